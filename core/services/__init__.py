"""The process's background services, each a LoopService with one `run_once()` step: the
dispatcher, the scheduler, recovery of dead runs, and watcher deliveries. core/bootstrap.py
builds and starts them."""
