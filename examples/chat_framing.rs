//! A chat room over a length-prefixed protocol, with each connection split into a read
//! half and a write half that run in two tasks: the seed's "Read/Write Split for a
//! Chat-Style Protocol", grown into the broadcasting server its comments describe.
//!
//! Frame: a `u32` big-endian payload length, then the payload (at most 64 KiB; see
//! `examples/common/framing.rs`, which is also unit-tested by `tests/examples.rs`).
//!
//! The server gives every connection two tasks:
//! * the **reader** (`OwnedReadHalf`) decodes frames and puts each one in the mailbox of
//!   every *other* member of the room;
//! * the **writer** (`OwnedWriteHalf`) sends whatever arrives in its own mailbox.
//!
//! So a client that is slow to read never stops the server from reading it, and the
//! two directions of one socket proceed at the same time. A frame that declares a
//! length above the limit ends that connection with an error (the stream cannot be
//! resynchronised); nothing is buffered for it.
//!
//! The clients do the same on their side: Alice and Bob each send 500 messages and one
//! 60 KiB message from a writer task while a reader task receives the other's messages,
//! and both check that every message arrived intact and in order. Then "Mallory" sends a
//! header claiming a 1 MiB frame and is disconnected. Run: `cargo run --example chat_framing`.

#[path = "common/framing.rs"]
mod framing;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use blitz_io::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use blitz_io::net::{Address, TcpListener, TcpStream};
use blitz_io::task::spawn;
use blitz_io::time::timeout;
use framing::{encode_frame, FrameDecoder, MAX_FRAME_LEN};

/// An unbounded single-consumer mailbox built from a `Mutex` and a `Waker` (blitz-io has
/// no channel type; this is all a chat room needs).
mod mailbox {
    use std::collections::VecDeque;
    use std::future::poll_fn;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::task::{Poll, Waker};

    struct Shared<T> {
        queue: VecDeque<T>,
        receiver: Option<Waker>,
        senders: usize,
    }

    fn lock<T>(m: &Mutex<Shared<T>>) -> MutexGuard<'_, Shared<T>> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sending side; clone it for more senders.
    pub struct Sender<T>(Arc<Mutex<Shared<T>>>);
    /// The receiving side.
    pub struct Receiver<T>(Arc<Mutex<Shared<T>>>);

    pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Mutex::new(Shared { queue: VecDeque::new(), receiver: None, senders: 1 }));
        (Sender(shared.clone()), Receiver(shared))
    }

    impl<T> Sender<T> {
        pub fn send(&self, value: T) {
            let waker = {
                let mut s = lock(&self.0);
                s.queue.push_back(value);
                s.receiver.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            lock(&self.0).senders += 1;
            Sender(self.0.clone())
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let waker = {
                let mut s = lock(&self.0);
                s.senders -= 1;
                if s.senders == 0 {
                    s.receiver.take()
                } else {
                    None
                }
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    impl<T> Receiver<T> {
        /// The next value; `None` once every sender is gone and the queue is empty.
        pub async fn recv(&mut self) -> Option<T> {
            poll_fn(|cx| {
                let mut s = lock(&self.0);
                if let Some(v) = s.queue.pop_front() {
                    Poll::Ready(Some(v))
                } else if s.senders == 0 {
                    Poll::Ready(None)
                } else {
                    s.receiver = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }
}

/// Every member's mailbox, by connection id.
type Room = Arc<Mutex<HashMap<u64, mailbox::Sender<Arc<[u8]>>>>>;

/// Reads the next frame, `Ok(None)` on a clean EOF between frames.
///
/// # Errors
///
/// `InvalidData` for a frame over the limit, `UnexpectedEof` for EOF inside a frame.
async fn recv_frame(reader: &mut OwnedReadHalf, decoder: &mut FrameDecoder) -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(frame) = decoder.next_frame()? {
            return Ok(Some(frame));
        }
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return match decoder.buffered() {
                0 => Ok(None),
                _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a frame")),
            };
        }
        decoder.extend(&buf[..n]);
    }
}

/// Sends one frame.
///
/// # Errors
///
/// `InvalidData` for a payload over the limit; the write errors of the socket.
async fn send_frame(writer: &mut OwnedWriteHalf, payload: &[u8]) -> io::Result<()> {
    writer.write_all(&encode_frame(payload, MAX_FRAME_LEN)?).await
}

fn lock_room(room: &Room) -> std::sync::MutexGuard<'_, HashMap<u64, mailbox::Sender<Arc<[u8]>>>> {
    room.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves one member: a writer task drains its mailbox, this task reads and broadcasts.
async fn handle_member(id: u64, stream: TcpStream, room: Room) -> io::Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut mailbox) = mailbox::channel::<Arc<[u8]>>();

    let writer_task = spawn(async move {
        while let Some(msg) = mailbox.recv().await {
            send_frame(&mut writer, &msg).await?;
        }
        // The mailbox closed (the member left): dropping the write half sends FIN.
        Ok::<(), io::Error>(())
    });

    {
        let mut members = lock_room(&room);
        members.insert(id, tx);
        let notice: Arc<[u8]> = format!("* {} in room", members.len()).into_bytes().into();
        for member in members.values() {
            member.send(notice.clone());
        }
    }

    let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let result = async {
        while let Some(frame) = recv_frame(&mut reader, &mut decoder).await? {
            let frame: Arc<[u8]> = frame.into();
            for (_, member) in lock_room(&room).iter().filter(|(other, _)| **other != id) {
                member.send(frame.clone());
            }
        }
        Ok::<(), io::Error>(())
    }
    .await;

    // Leaving closes our mailbox; the writer sends what is queued, then finishes.
    lock_room(&room).remove(&id);
    writer_task.await??;
    result
}

/// The accept loop: one member task per connection.
async fn serve(listener: TcpListener, room: Room) {
    let next_id = AtomicU64::new(1);
    loop {
        match listener.accept().await {
            Ok(conn) => {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let room = room.clone();
                spawn(async move {
                    match handle_member(id, conn.stream, room).await {
                        Ok(()) => println!("server: member {id} left"),
                        Err(e) => println!("server: member {id} dropped: {e}"),
                    }
                });
            }
            Err(e) => {
                eprintln!("server: accept failed: {e}");
                blitz_io::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

const MESSAGES: usize = 500;
const BIG_LEN: usize = 60_000;

fn big_message(name: &str) -> Vec<u8> {
    let seed = name.len() as u8;
    (0..BIG_LEN).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Connects and waits until the room has `members` members (so nothing is sent before
/// everyone can receive it). Returns the stream and the decoder holding any extra bytes.
async fn join(addr: Address, members: usize) -> io::Result<(TcpStream, FrameDecoder)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut reader, writer) = stream.into_split();
    let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let want = format!("* {members} in room");
    loop {
        let frame =
            recv_frame(&mut reader, &mut decoder).await?.ok_or_else(|| invalid("closed while joining".into()))?;
        if frame == want.as_bytes() {
            break;
        }
    }
    let stream = reader.reunite(writer).map_err(|e| io::Error::other(e.to_string()))?;
    Ok((stream, decoder))
}

/// One chat client: sends its messages from one task and checks the peer's in another.
async fn chat(name: &'static str, peer: &'static str, stream: TcpStream, mut decoder: FrameDecoder) -> io::Result<()> {
    let (mut reader, mut writer) = stream.into_split();

    let sender = spawn(async move {
        for i in 0..MESSAGES {
            send_frame(&mut writer, format!("{name}: message {i}").as_bytes()).await?;
        }
        send_frame(&mut writer, &big_message(name)).await?;
        Ok::<OwnedWriteHalf, io::Error>(writer)
    });

    let receiver = spawn(async move {
        for i in 0..MESSAGES {
            let frame =
                recv_frame(&mut reader, &mut decoder).await?.ok_or_else(|| invalid(format!("{name}: early EOF")))?;
            let want = format!("{peer}: message {i}");
            if frame != want.as_bytes() {
                return Err(invalid(format!("{name} expected {want:?}, got {:?}", String::from_utf8_lossy(&frame))));
            }
        }
        let big = recv_frame(&mut reader, &mut decoder).await?.ok_or_else(|| invalid(format!("{name}: early EOF")))?;
        if big != big_message(peer) {
            return Err(invalid(format!("{name}: the {BIG_LEN}-byte message from {peer} was corrupted")));
        }
        Ok::<OwnedReadHalf, io::Error>(reader)
    });

    let writer = sender.await??;
    let reader = receiver.await??;
    println!("{name}: sent {MESSAGES} + 1 big, received all {MESSAGES} + 1 big from {peer} in order");
    // The halves came from one stream, so they reunite; dropping it closes the socket.
    let stream = reader.reunite(writer).map_err(|e| io::Error::other(e.to_string()))?;
    drop(stream);
    Ok(())
}

async fn run() -> io::Result<()> {
    let listener = TcpListener::bind(Address::loopback_v4(0))?;
    let addr = listener.local_addr()?;
    println!("chat server on {addr}");
    let room: Room = Arc::new(Mutex::new(HashMap::new()));
    let server = spawn(serve(listener, room.clone()));

    // Alice joins first and waits for Bob; Bob sees both members as he joins.
    let alice = spawn(async move {
        let (stream, decoder) = join(addr, 2).await?;
        chat("alice", "bob", stream, decoder).await
    });
    let (bob_stream, bob_decoder) = join(addr, 2).await?;
    let bob = spawn(chat("bob", "alice", bob_stream, bob_decoder));
    alice.await??;
    bob.await??;

    // The sender refuses to build an oversized frame...
    match encode_frame(&vec![0u8; MAX_FRAME_LEN + 1], MAX_FRAME_LEN) {
        Err(e) => println!("client: refused to send: {e}"),
        Ok(_) => return Err(invalid("an oversized frame was encoded".into())),
    }
    // ...and the server drops a peer that declares one, without buffering it. (Mallory
    // may first receive room notices; after the header, the server closes on her.)
    let mut mallory = TcpStream::connect(addr).await?;
    mallory.write_all(&(1u32 << 20).to_be_bytes()).await?;
    let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let mut buf = [0u8; 1024];
    loop {
        let n = mallory.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        decoder.extend(&buf[..n]);
    }
    while let Some(frame) = decoder.next_frame()? {
        if !frame.starts_with(b"* ") {
            return Err(invalid(format!("mallory got an unexpected frame {:?}", String::from_utf8_lossy(&frame))));
        }
    }
    println!("mallory: declared a 1 MiB frame and was disconnected");

    server.abort();
    Ok(())
}

fn main() {
    let result = blitz_io::run(async { timeout(Duration::from_secs(20), run()).await.map_err(io::Error::from)? });
    if let Err(e) = result {
        eprintln!("chat_framing: FAILED: {e}");
        std::process::exit(1);
    }
    println!("chat_framing: ok");
}
