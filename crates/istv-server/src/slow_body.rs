//! A request body that must keep arriving: one that sends no byte for
//! `stall`, or fewer than `min_bytes_per_s` on average over a `window`, ends
//! in an error, so a trickled upload cannot hold its site's upload slot.
//! Only the time spent waiting for the client counts: while the handler is
//! busy (the store writing a batch) the clock stops.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use std::time::Duration;
use tokio::time::Instant;

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyRate {
    /// Longest wait for the next byte.
    pub stall: Duration,
    /// Least average rate over each `window`; 0 checks none.
    pub min_bytes_per_s: u64,
    /// The span the rate is averaged over.
    pub window: Duration,
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SlowBody {
    /// No byte within the stall limit.
    #[error("no body bytes arrived for {0} ms; the request was cut off")]
    Stalled(u128),
    /// Too few bytes over a window.
    #[error("the body arrived at {got} bytes in {ms} ms, below the minimum of {min} bytes a second; the request was cut off")]
    TooSlow {
        /// Bytes received in the window.
        got: u64,
        /// The window's length.
        ms: u128,
        /// The minimum rate.
        min: u64,
    },
}

/// The middleware: every request body with content is guarded.
pub(crate) async fn guard(State(rate): State<BodyRate>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let body = Body::from_stream(guarded(body.into_data_stream(), rate));
    next.run(Request::from_parts(parts, body)).await
}

struct Clock<S> {
    inner: S,
    rate: BodyRate,
    /// Time spent waiting for the client in the current window.
    waited: Duration,
    /// Bytes received in the current window.
    bytes: u64,
    done: bool,
}

/// `inner`, ended by a [`SlowBody`] error when it stalls or trickles.
pub(crate) fn guarded<S, E>(
    inner: S,
    rate: BodyRate,
) -> impl Stream<Item = Result<Bytes, axum::BoxError>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: Into<axum::BoxError>,
{
    let clock = Clock {
        inner,
        rate,
        waited: Duration::ZERO,
        bytes: 0,
        done: false,
    };
    futures_util::stream::unfold(clock, |mut c| async move {
        if c.done {
            return None;
        }
        let item = c.next_chunk().await;
        if !matches!(item, Some(Ok(_))) {
            c.done = true;
        }
        item.map(|i| (i, c))
    })
}

impl<S, E> Clock<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<axum::BoxError>,
{
    async fn next_chunk(&mut self) -> Option<Result<Bytes, axum::BoxError>> {
        let stall_started = Instant::now();
        loop {
            let stalled_for = stall_started.elapsed();
            let mut wait = self.rate.stall.saturating_sub(stalled_for);
            if self.rate.min_bytes_per_s > 0 {
                wait = wait.min(self.rate.window.saturating_sub(self.waited));
            }
            let started = Instant::now();
            let got = tokio::time::timeout(wait, self.inner.next()).await;
            self.waited += started.elapsed();
            if let Ok(Some(Ok(chunk))) = &got {
                self.bytes += chunk.len() as u64;
            }
            if self.rate.min_bytes_per_s > 0 && self.waited >= self.rate.window {
                let ms = self.rate.window.as_millis();
                let need = u128::from(self.rate.min_bytes_per_s) * ms / 1000;
                if u128::from(self.bytes) < need {
                    return Some(Err(SlowBody::TooSlow {
                        got: self.bytes,
                        ms,
                        min: self.rate.min_bytes_per_s,
                    }
                    .into()));
                }
                self.waited = Duration::ZERO;
                self.bytes = 0;
            }
            match got {
                Ok(Some(Ok(chunk))) => return Some(Ok(chunk)),
                Ok(Some(Err(e))) => return Some(Err(e.into())),
                Ok(None) => return None,
                Err(_) if stall_started.elapsed() >= self.rate.stall => {
                    return Some(Err(SlowBody::Stalled(self.rate.stall.as_millis()).into()))
                }
                // A window ended with enough bytes: keep waiting.
                Err(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn rate(stall_ms: u64, min: u64, window_ms: u64) -> BodyRate {
        BodyRate {
            stall: Duration::from_millis(stall_ms),
            min_bytes_per_s: min,
            window: Duration::from_millis(window_ms),
        }
    }

    /// Chunks of `size` bytes, each after `gap_ms` of silence.
    fn paced(
        chunks: usize,
        size: usize,
        gap_ms: u64,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
        Box::pin(stream::iter(0..chunks).then(move |_| async move {
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
            Ok(Bytes::from(vec![b'x'; size]))
        }))
    }

    async fn collect(
        s: impl Stream<Item = Result<Bytes, axum::BoxError>>,
    ) -> (usize, Option<String>) {
        let mut s = std::pin::pin!(s);
        let mut bytes = 0;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => bytes += b.len(),
                Err(e) => return (bytes, Some(e.to_string())),
            }
        }
        (bytes, None)
    }

    #[tokio::test]
    async fn a_steady_body_passes_whole() {
        // 10 chunks of 100 bytes every 20 ms: 5,000 bytes a second.
        let (bytes, err) = collect(guarded(paced(10, 100, 20), rate(500, 1000, 100))).await;
        assert_eq!((bytes, err), (1000, None));
    }

    #[tokio::test]
    async fn a_body_that_stops_is_cut_off_after_the_stall_limit() {
        let body = paced(3, 10, 10).chain(stream::pending());
        let (bytes, err) = collect(guarded(Box::pin(body), rate(200, 0, 1000))).await;
        assert_eq!(bytes, 30);
        assert_eq!(
            err.as_deref(),
            Some("no body bytes arrived for 200 ms; the request was cut off")
        );
    }

    #[tokio::test]
    async fn a_trickle_below_the_rate_is_cut_off_at_the_end_of_its_window() {
        // 1 byte every 25 ms = 40 bytes a second, below 200; never stalled.
        let (bytes, err) = collect(guarded(paced(100, 1, 25), rate(1000, 200, 250))).await;
        // The first 250 ms window ends with about 10 bytes, short of 50.
        assert!(bytes < 50, "{bytes}");
        let err = err.unwrap();
        assert!(
            err.starts_with("the body arrived at ")
                && err.ends_with(" bytes in 250 ms, below the minimum of 200 bytes a second; the request was cut off"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn time_the_reader_spends_elsewhere_does_not_count() {
        let mut s = std::pin::pin!(guarded(paced(3, 10, 10), rate(100, 0, 1000)));
        assert_eq!(s.next().await.unwrap().unwrap().len(), 10);
        // The handler is busy for longer than the stall limit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.next().await.unwrap().unwrap().len(), 10);
        assert_eq!(s.next().await.unwrap().unwrap().len(), 10);
        assert!(s.next().await.is_none());
    }
}
