"""The recorder and the workload run as their own processes; never import them here
(the recorder loads libfuse, which a machine without FUSE does not have)."""

collect_ignore = ["recorder.py", "workload.py"]
