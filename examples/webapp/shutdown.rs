//! The graceful stop: at the first SIGTERM or SIGINT, `/health` turns 503 at once; after
//! `--drain` (or at a second signal) the server stops taking requests.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator;

use crate::server::Listening;
use crate::state::App;

/// SIGTERM and SIGINT, caught from registration on and waiting to be read.
pub struct Signals(iterator::Signals);

impl Signals {
    pub fn register() -> Result<Signals, String> {
        iterator::Signals::new([SIGTERM, SIGINT])
            .map(Signals)
            .map_err(|e| format!("catching SIGTERM and SIGINT: {e}"))
    }

    /// Starts the thread that waits for the first signal, drains, and stops the server.
    pub fn watch(
        self,
        app: Arc<App>,
        listening: Arc<Listening>,
        drain: Duration,
    ) -> JoinHandle<()> {
        // Signals are read on a thread of their own and passed on, so that the drain can
        // wait for "a second signal or the end of the drain, whichever comes first".
        let (sender, received) = mpsc::channel();
        let mut signals = self.0;
        thread::spawn(move || {
            for signal in signals.forever() {
                if sender.send(signal).is_err() {
                    break;
                }
            }
        });
        thread::spawn(move || {
            let Ok(first) = received.recv() else {
                return;
            };
            app.start_draining();
            if drain.is_zero() {
                tracing::info!("received {}, stopping", name(first));
            } else {
                tracing::info!("received {}, draining for {drain:?}", name(first));
                if let Ok(second) = received.recv_timeout(drain) {
                    tracing::info!("received {} while draining, stopping now", name(second));
                }
            }
            listening.stop();
        })
    }
}

fn name(signal: i32) -> &'static str {
    if signal == SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    }
}
