//! Unit tests that need the store's insides: a writer held still to fill its queue.

use super::{Backend, Options, Record, Reply, State, StateErrorKind};
use crate::config::StateConfig;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Blocks the writer (see `embedded::Write::Hold`): it says so on `started`, then waits until
/// `release` is dropped.
pub(super) struct Hold {
    started: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Hold {
    pub(super) fn wait(&self) {
        let _ = self.started.send(());
        let _ = self.release.recv();
    }
}

/// A fresh directory per call: `test_all` runs each test once per driver, in parallel.
fn config(name: &str) -> StateConfig {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = format!(
        "{}/target/tmp/state-unit-{name}-{}",
        env!("CARGO_MANIFEST_DIR"),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let _ = std::fs::remove_dir_all(&dir);
    StateConfig {
        path: dir,
        ..StateConfig::default()
    }
}

fn rec(id: &str) -> Record {
    Record {
        id: id.into(),
        previous: None,
        model: "m".into(),
        created_at: 1,
        status: "completed".into(),
        input: b"[]".to_vec(),
        output: b"[]".to_vec(),
        response: b"{}".to_vec(),
    }
}

/// The error a reply holds without waiting, if it does.
fn refused<T>(mut r: Reply<T>) -> Option<StateErrorKind> {
    match std::pin::Pin::new(&mut r).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(e)) => Some(e.kind),
        _ => None,
    }
}

/// A full write queue refuses the next command at once, as `Busy`, instead of blocking the
/// caller; what was queued is still served once the writer moves again.
#[monoio::test_all]
async fn a_full_queue_fails_fast() {
    let opts = Options {
        queue_depth: 2,
        ..Options::default()
    };
    let state = State::open_with(&config("queue-full"), opts).unwrap();
    let Backend::Embedded(store) = &state.backend else {
        unreachable!("the config is embedded");
    };
    let (started, started_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    store.hold_writer(Hold {
        started,
        release: release_rx,
    });
    started_rx.recv().unwrap();
    let a = state.put("p", rec("resp_a"));
    let b = state.put("p", rec("resp_b"));
    // On another thread, so a queue that blocked instead would fail the test, not hang it.
    let (done, answer) = mpsc::channel();
    let s = state.clone();
    std::thread::spawn(move || {
        let kinds = vec![
            refused(s.put("p", rec("resp_c"))),
            refused(s.delete("p", "resp_a")),
            refused(s.sweep()),
        ];
        let _ = done.send(kinds);
    });
    let kinds = answer.recv_timeout(Duration::from_secs(10));
    drop(release);
    assert_eq!(kinds, Ok(vec![Some(StateErrorKind::Busy); 3]));
    a.await.unwrap();
    b.await.unwrap();
    assert!(state.get("p", "resp_b").await.unwrap().is_some());
    assert!(state.get("p", "resp_c").await.unwrap().is_none());
    assert!(state.close(Duration::from_secs(10)));
}
