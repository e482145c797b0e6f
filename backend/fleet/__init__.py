"""Many jobs on many workers: the Ray Serve fleet and the `batch` command.

`runner.FleetRunner` has PartPackerPipeline's two job methods and runs each generation on a
replica of `deployment.PipelineReplica` (one per GPU) of a cluster joined by `cluster`; `events`
is what a replica streams back. `batch` runs a folder of images through either the fleet or one
in-process pipeline, and imports no Ray itself: Ray is the optional extra `fleet`.
"""
