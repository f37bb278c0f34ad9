use super::Replay;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use std::convert::Infallible;

type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn body(chunks: &[&'static str], trailers: bool) -> Frames {
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
        .collect();
    if trailers {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "0".parse().expect("a valid header value"));
        frames.push(Ok(Frame::trailers(t)));
    }
    StreamBody::new(futures_util::stream::iter(frames))
}

async fn read<B: Body<Data = Bytes> + Unpin>(b: B) -> (Vec<u8>, Option<HeaderMap>)
where
    B::Error: std::fmt::Debug,
{
    let collected = b.collect().await.expect("the test body does not fail");
    let trailers = collected.trailers().cloned();
    (collected.to_bytes().to_vec(), trailers)
}

#[tokio::test]
async fn a_second_attempt_gets_the_same_bytes_and_trailers() {
    let template = Replay::new(body(&["ab", "cd", "ef"], true), 64);
    let (bytes, trailers) = read(template.clone()).await;
    assert_eq!(bytes, b"abcdef");
    assert!(trailers.is_some());
    assert!(template.can_replay());
    let (bytes, trailers) = read(template.clone()).await;
    assert_eq!(bytes, b"abcdef");
    assert_eq!(trailers.expect("trailers replayed")["grpc-status"], "0");
}

#[tokio::test]
async fn a_retry_after_a_partial_read_replays_then_reads_on() {
    let template = Replay::new(body(&["ab", "cd", "ef"], false), 64);
    let mut first = template.clone();
    // The first attempt's upstream read one frame, then failed.
    let frame = first.frame().await.expect("a frame").expect("no error");
    assert_eq!(frame.into_data().expect("data"), "ab");
    drop(first);
    let (bytes, _) = read(template.clone()).await;
    assert_eq!(bytes, b"abcdef");
}

#[tokio::test]
async fn a_body_over_the_limit_streams_whole_but_cannot_be_replayed() {
    let template = Replay::new(body(&["0123456789", "0123456789"], false), 15);
    let (bytes, _) = read(template.clone()).await;
    assert_eq!(bytes.len(), 20, "the first attempt gets every byte");
    assert!(!template.can_replay());
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_can_be_replayed() {
    let template = Replay::new(body(&["01234", "56789"], false), 10);
    read(template.clone()).await;
    assert!(template.can_replay());
    assert_eq!(read(template.clone()).await.0, b"0123456789");
}

#[tokio::test]
async fn an_empty_body_is_the_end_at_once() {
    let empty = Replay::<Frames>::empty();
    assert!(empty.is_end_stream());
    assert!(empty.can_replay());
    assert!(read(empty).await.0.is_empty());
}

#[tokio::test]
async fn an_abandoned_attempt_stops_reading_when_a_new_one_starts() {
    let template = Replay::new(body(&["ab", "cd"], false), 64);
    let mut first = template.clone();
    let frame = first.frame().await.expect("a frame").expect("no error");
    assert_eq!(frame.into_data().expect("data"), "ab");
    let second = template.clone();
    let next = first.frame().await.expect("an answer");
    assert!(
        matches!(next, Err(super::ReplayError::Superseded)),
        "{next:?}"
    );
    assert_eq!(read(second).await.0, b"abcd");
}
