"""The shell: what sits on top of the apps and may import every one of them.

The worker's loop (``run_worker``), the admin site with its dashboard and two-factor sign-in,
and the metrics scrape. Nothing below (``gateway``'s kernel or an app) imports from here.
"""
