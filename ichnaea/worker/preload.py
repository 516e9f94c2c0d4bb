"""What the worker pool's fork server loads before it forks a worker process.

Importing this module imports the pipeline and loads the geocoder, so that
every worker process forked afterwards (:func:`ichnaea.worker.pool.run_pool`)
starts with them in memory, shared copy-on-write, instead of importing and
parsing them again.
"""

import gc

import ichnaea.worker.process  # noqa: F401 - the worker loop, imported once
from ichnaea.worker.jobs import shared_geocoder

shared_geocoder()

# What is loaded by now lives as long as the processes: keep the collector
# from walking it (and from touching, so copying, its pages in every fork).
gc.freeze()
