"""This browser session's training run, found again after a reload: the run's id is kept in the Train
page's address (`?run=`), so a reload, or the same address in another tab, reattaches to the run
(progress, live map, controls) instead of showing a fresh form while it goes on unseen. A run whose
every tab is closed is saved and stopped after the `unwatched_minutes` limit (VAE_UNWATCHED_RUN_MINUTES):
the engine's watch (`vae_core.hosting.stop_unwatched_runs`) asks here whether a session is connected."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.display import plain
from vae_core import hosting
from vae_core.hosting import find_run, keep_stopping_unwatched_runs, watch_run
from vae_core.limits import limit

JOB = "train_job"  # session key: this session's TrainingJob
RUN_PARAM = "run"  # the Train page's address: ?run=<the run's id>


def session_id() -> str:
    """This browser session's id (Streamlit's), or "" outside a server (AppTest)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def _connected(session: str) -> bool:
    """Whether browser session `session` is still connected to this server."""
    return Runtime.exists() and Runtime.instance().is_active_session(session)


def unwatched_line() -> str:
    """How a run nobody watches ends, in one line for the page."""
    minutes = limit("unwatched_minutes")
    if minutes is None:
        return "A run goes on when every tab showing it is closed (VAE_UNWATCHED_RUN_MINUTES is off)."
    return (f"A run whose every tab is closed is saved and stopped after {minutes:g} minutes "
            "(VAE_UNWATCHED_RUN_MINUTES); its address finds it again until then.")


def session_run():
    """This session's run: the one it started, else the one the address names (a reload, a copied link:
    attached from now on), else None. A run shown here counts as watched by this session."""
    job = st.session_state.get(JOB)
    wanted = st.query_params.get(RUN_PARAM)
    if wanted and (job is None or getattr(job, "run_id", None) != wanted):
        found = find_run(wanted)
        if found is None:
            st.info(plain(f"No run {wanted[:24]} on this server now: it ended more than an hour ago or before "
                          "the server restarted (its checkpoint, if saved, is in the sidebar's list), or the "
                          "address is not a run's."))
            del st.query_params[RUN_PARAM]
        elif job is None or not job.alive:  # a session running a run of its own keeps it
            st.session_state[JOB] = job = found
    if job is not None:
        show_run(job)
    return job


def show_run(job) -> None:
    """Mark `job` as watched by this session, and keep its id in the address (a reload finds it)."""
    if getattr(job, "run_id", None) is None:
        return
    if (sid := session_id()):
        watch_run(job, sid)
        keep_stopping_unwatched_runs(_connected)
    if st.query_params.get(RUN_PARAM) != job.run_id:
        st.query_params[RUN_PARAM] = job.run_id


def launch_run(config, out: Path, resume=None):
    """Start a run for this session (`vae_core.hosting.start_run`; its refusals are VAEErrors) and keep it."""
    job = hosting.start_run(config, out, resume=resume, watcher=session_id() or None)
    st.session_state[JOB] = job
    show_run(job)
    return job
