"""An avatarization written for the published Avatar Python client (octopize.avatar), in the
style of its user guide: API-key authentication, one table, the default jobs, the results.

tests/python/test_published.py runs it against avatard after the two edits README.md's
"Using it from Python" describes, and no other: the import of Manager becomes
`from avatard import Manager`, and the API key goes (the daemon holds it).

Usage: published_manager_script.py TABLE.csv OUTPUT-DIRECTORY
"""
import os
import sys

from avatars.manager import Manager

data_path, output_dir = sys.argv[1], sys.argv[2]

manager = Manager(base_url=os.environ.get("AVATAR_BASE_URL", "https://www.octopize.app"), api_key=os.environ["AVATAR_API_KEY"])
print("health:", manager.get_health())

runner = manager.create_runner(set_name="published-iris")
runner.add_table("iris", data_path)
runner.set_parameters("iris", k=5)
runner.run()

results = runner.get_all_results()
print("results of:", ", ".join(sorted(results)))
avatars = runner.shuffled("iris")
print("avatars:", avatars.shape)
print(avatars.head())
print("privacy metrics:", len(runner.privacy_metrics("iris")))
print("signal metrics:", len(runner.signal_metrics("iris")))
original, projected = runner.projections("iris")
print("projections:", original.shape, projected.shape)
print("status:", runner.get_status("standard"))
runner.download_report(os.path.join(output_dir, "report.pdf"))

set_name, jobs = manager.find_ids_by_name("published-iris")[0]
print("run:", set_name, len(jobs), "jobs")
last_jobs = manager.get_last_jobs(count=5)
print("last jobs:", ", ".join(sorted(job.status for job in last_jobs.values())))
reloaded = manager.create_runner_from_name("published-iris")
print("reloaded:", reloaded.shuffled("iris").shape)
deleted = manager.delete_job("published-iris")
print("deleted:", len(deleted.deleted_jobs), "failed:", len(deleted.failed_jobs))
