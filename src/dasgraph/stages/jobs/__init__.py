"""The job machinery the fan-out stages share: where their cells run (``executor``: in this
process, in spawned workers, or as SLURM jobs through submitit), what a sweep launched and how
far it got (``manifest``), and the DAS cells' shards and worker processes (``das_cells``)."""
