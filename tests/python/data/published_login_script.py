"""An avatarization written for the published Avatar Python client in the style of its older
user guide: username and password (the deprecated login), one table, the shuffled avatars.

tests/python/test_login.py runs it against avatard (which then logs in and holds the session)
after one edit: the import of Manager becomes `from avatard import Manager`.

Usage: published_login_script.py TABLE.csv OUTPUT-DIRECTORY
"""
import os
import sys

from avatars.manager import Manager

manager = Manager(base_url=os.environ.get("AVATAR_BASE_URL", "https://www.octopize.app"))
manager.authenticate(os.environ["AVATAR_USERNAME"], os.environ["AVATAR_PASSWORD"])

runner = manager.create_runner("legacy-iris")
runner.add_table("iris", sys.argv[1])
runner.set_parameters("iris", k=5)
runner.run()
print("avatars:", runner.shuffled("iris").shape)
runner.download_report(os.path.join(sys.argv[2], "legacy-report.pdf"))
