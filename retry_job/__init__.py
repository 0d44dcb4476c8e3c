"""The retry runner: claims due webhook events with a lease, re-processes them, backs off.

Modules: ``backoff`` (pure delays), ``policy`` (the layered policy), ``lock`` (the run lock),
``runner`` (one run), ``ticker`` (runs on a timer for `tenrusl dev`), ``cli`` (`tenrusl retry`
and `tenrusl status`).
"""
