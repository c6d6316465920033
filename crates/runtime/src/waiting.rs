//! A guest blocked in `wasi:io/poll` waits in the host, like a guest inside `http-client`.
//!
//! Why: a call's `call_timeout` counts the plugin's own time, and a call waiting for the
//! partner must give back its plugin's running permit (so that the plugin's other calls run
//! meanwhile). `http-client` does both inside `send`. A `wasi:http` guest instead starts a
//! request and then blocks in `poll` (or `pollable.block`) until the answer, the rate
//! limiter or the partner is ready; so these two functions replace wasmtime-wasi's own
//! (the linker shadows them), do the same waiting, and account for it the same way: the time
//! is added to the call's `waited`, and the permit is released for the wait and queued for
//! again before guest code resumes.
//!
//! Any wait in `poll` counts, a clock's too: a plugin that sleeps is not running. The call as
//! a whole stays bounded by `max_call_duration`.

use std::time::Instant;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi_io::bindings::wasi::io::poll;
use wasmtime_wasi_io::poll::DynPollable;

use super::runtime::InstanceState;

/// The `HasData` of the shadowing `wasi:io/poll`.
struct Waiting;

impl HasData for Waiting {
    type Data<'a> = WaitingView<'a>;
}

/// One call's state, seen by `wasi:io/poll`.
struct WaitingView<'a>(&'a mut InstanceState);

/// Replace the linker's `wasi:io/poll` (added by wasmtime-wasi) with the accounting one.
pub(crate) fn shadow_poll(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = poll::add_to_linker::<InstanceState, Waiting>(linker, |state| WaitingView(state));
    linker.allow_shadowing(false);
    result
}

impl InstanceState {
    /// Run `wait` as a wait in the host: without the running permit, and not on the
    /// plugin's clock.
    pub(crate) async fn waiting<R>(&mut self, wait: impl AsyncFnOnce(&mut Self) -> R) -> R {
        let entered = Instant::now();
        self.run.release();
        let result = wait(self).await;
        // Measured before queuing to run again: that queue is counted by the run slot.
        self.waited += entered.elapsed();
        self.run.acquire().await;
        result
    }
}

impl poll::Host for WaitingView<'_> {
    async fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        self.0.waiting(async move |state: &mut InstanceState| poll::Host::poll(&mut state.table, pollables).await).await
    }
}

impl poll::HostPollable for WaitingView<'_> {
    async fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.0
            .waiting(async move |state: &mut InstanceState| poll::HostPollable::block(&mut state.table, pollable).await)
            .await
    }

    async fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(&mut self.0.table, pollable).await
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(&mut self.0.table, pollable)
    }
}
