//! A request body that can be sent more than once, for retries.
//!
//! The first attempt streams the client's body as it arrives (nothing waits for the whole body,
//! so a streaming gRPC call is not held back) while a copy of each frame is kept, up to a byte
//! limit. A later attempt replays the copy and then goes on reading the client's body where
//! the earlier attempt stopped. Once the body outgrows the limit the copy is dropped and the
//! request can no longer be retried: [`Replay::can_replay`] says so.

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::{
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

/// One attempt's view of a replayable body. Clones share the copy; each clone starts at the
/// beginning.
#[derive(Debug)]
pub struct Replay<B = Incoming> {
    shared: Arc<Mutex<Shared<B>>>,
    /// How many data frames this attempt has sent.
    pos: usize,
    /// Whether this attempt has sent everything, trailers included.
    done: bool,
    /// Which attempt this is; only the newest may read on.
    generation: u64,
}

/// Why a replayed body failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    /// The client's body failed.
    #[error(transparent)]
    Body(E),
    /// A newer attempt took over the body; this one is abandoned.
    #[error("the request body moved to a newer attempt")]
    Superseded,
}

#[derive(Debug)]
struct Shared<B> {
    /// The data frames read so far, while under the limit.
    data: Vec<Bytes>,
    /// How many data frames have been read from the client's body in all.
    frames: usize,
    trailers: Option<HeaderMap>,
    buffered: usize,
    limit: usize,
    /// The copy was dropped because the body outgrew `limit`.
    capped: bool,
    /// The client's body, until it ends.
    rest: Option<B>,
    /// The client's body failed: no attempt can have it whole.
    failed: bool,
    /// The newest attempt's generation.
    generation: u64,
}

impl<B: Body<Data = Bytes> + Unpin> Replay<B> {
    /// A replayable view of `body`, keeping at most `limit` bytes.
    pub fn new(body: B, limit: usize) -> Self {
        let rest = (!body.is_end_stream()).then_some(body);
        Self::with(rest, limit)
    }
}

impl<B> Replay<B> {
    /// An empty body (a bodiless request re-sent to another endpoint).
    pub fn empty() -> Self {
        Self::with(None, 0)
    }

    fn with(rest: Option<B>, limit: usize) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                data: Vec::new(),
                frames: 0,
                trailers: None,
                buffered: 0,
                limit,
                capped: false,
                rest,
                failed: false,
                generation: 0,
            })),
            pos: 0,
            done: false,
            generation: 0,
        }
    }

    /// Whether another attempt could send the whole body: the copy is complete so far.
    pub fn can_replay(&self) -> bool {
        let s = lock(&self.shared);
        !s.capped && !s.failed
    }
}

fn lock<B>(shared: &Mutex<Shared<B>>) -> MutexGuard<'_, Shared<B>> {
    // The state is plain data updated in place; a panic elsewhere cannot tear it in a way that
    // matters more than losing the retry.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl<B> Clone for Replay<B> {
    /// A new attempt: it starts at the beginning, and the attempts before it stop reading (an
    /// abandoned attempt still being sent fails instead of taking the client's next bytes).
    fn clone(&self) -> Self {
        let mut s = lock(&self.shared);
        s.generation += 1;
        Self {
            shared: self.shared.clone(),
            pos: 0,
            done: false,
            generation: s.generation,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Replay<B> {
    type Data = Bytes;
    type Error = ReplayError<B::Error>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let mut s = lock(&this.shared);
        if this.generation != s.generation {
            this.done = true;
            return Poll::Ready(Some(Err(ReplayError::Superseded)));
        }
        if this.pos < s.frames {
            // Behind what has been read: replay the copy. Without one (an earlier attempt read
            // past the limit) this attempt cannot have the whole body; `can_replay` keeps a
            // retry from getting here, and ending early is the safe failure.
            let Some(chunk) = s.data.get(this.pos).cloned().filter(|_| !s.capped) else {
                this.done = true;
                return Poll::Ready(None);
            };
            this.pos += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        let Some(rest) = s.rest.as_mut() else {
            this.done = true;
            return Poll::Ready(s.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        };
        let frame = match Pin::new(rest).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        match frame {
            None => {
                s.rest = None;
                this.done = true;
                Poll::Ready(None)
            }
            Some(Err(e)) => {
                s.failed = true;
                s.rest = None;
                this.done = true;
                Poll::Ready(Some(Err(ReplayError::Body(e))))
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    s.record(&data);
                    this.pos += 1;
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        s.trailers = Some(trailers.clone());
                        s.rest = None;
                        this.done = true;
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let s = lock(&self.shared);
        self.pos >= s.frames && s.rest.is_none() && s.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let s = lock(&self.shared);
        let ahead: u64 = if s.capped {
            0
        } else {
            s.data.iter().skip(self.pos).map(|b| b.len() as u64).sum()
        };
        match &s.rest {
            // Still reading the client's body: its own hint plus what is buffered ahead.
            Some(rest) => {
                let hint = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(hint.lower() + ahead);
                if let Some(upper) = hint.upper() {
                    out.set_upper(upper + ahead);
                }
                out
            }
            None => SizeHint::with_exact(ahead),
        }
    }
}

impl<B> Shared<B> {
    fn record(&mut self, data: &Bytes) {
        self.frames += 1;
        if self.capped {
            return;
        }
        self.buffered += data.len();
        if self.buffered > self.limit {
            self.capped = true;
            self.data = Vec::new();
            return;
        }
        self.data.push(data.clone());
    }
}

#[cfg(test)]
mod tests;
