//! One HTTP/1.1 exchange on a kept-alive backend connection, written and read by the task that
//! asked for it.
//!
//! Why not hyper's client connection for these: hyper drives each connection from a task of its
//! own, and a request reaches it through a channel, its response comes back through another, and
//! every body frame through a third; each hand-over is a wake-up and a poll. Profiles of the
//! passthrough row put that machinery at about a fifth of a proxied request's instructions. Here
//! the request's own task writes the request head (and a body it already holds) in one write,
//! reads the response head, and the response body reads the socket itself while the client's
//! connection polls it, as nginx's proxy module reads the upstream socket from the event loop
//! that writes to the client.
//!
//! What this covers: requests with no body or a body already in memory (every composition call,
//! and passthrough requests without a body: the bulk of a proxy's traffic). A client's streamed
//! upload goes through hyper's client (`pool`), which writes the body while it reads an early
//! answer.
//!
//! Responses are read as RFC 9112 §6.3 says (in the order hyper's client reads them): HEAD, 1xx,
//! 204 and 304 have no body; informational answers (100, 103) are skipped; a `Transfer-Encoding`
//! ending in `chunked` is decoded; another `Transfer-Encoding`, or no framing at all, is read to
//! the connection's end; `Content-Length` (the same value however often it is repeated) otherwise.
//! A connection goes back to its pool only when its answer was read to its exact end and both
//! sides keep it alive.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// At most this many header fields in a response head (hyper's default).
const MAX_HEADERS: usize = 100;
/// The largest response head read (hyper's default read buffer limit is about this size).
const MAX_HEAD: usize = 400 * 1024;
/// The room a read asks for at least.
const READ_ROOM: usize = 16 * 1024;
/// The longest chunk-size line (size, extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes skipped after a chunked body.
const MAX_TRAILERS: usize = 64 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The connection ended before an answer's head (or its end) arrived.
    #[error("connection closed before the message was complete")]
    Closed,
    /// The backend's answer is not HTTP/1.x as RFC 9112 writes it.
    #[error("invalid response from the backend: {0}")]
    Invalid(&'static str),
}

/// A connection to one backend and the bytes read from it that nothing has consumed yet.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    buf: BytesMut,
}

/// How the answer's body is delimited, and how much of it is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `remaining` bytes of a `Content-Length` body.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the backend closes the connection.
    Eof,
    Done,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers(usize),
}

impl Conn {
    pub fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
        }
    }

    /// True when the backend closed this idle connection or sent something unasked (an error it
    /// gives before it closes). Costs no system call unless the socket became readable since the
    /// last answer was read to a short read.
    pub fn is_stale(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `head` (request line and header fields, as `encode_head` wrote them) with `body`
    /// after it, in one write when they fit.
    pub async fn write_request(&mut self, head: &[u8]) -> io::Result<()> {
        self.io.write_all(head).await
    }

    /// Reads the answer's head. Informational answers are skipped. Returns the head, how its body
    /// is delimited, and whether the connection may carry another request after it.
    /// The answer's header fields are kept only when `keep_fields` (a composition call reads the
    /// status and the body alone).
    pub async fn read_head(
        &mut self,
        method: &Method,
        keep_fields: bool,
    ) -> Result<(http::response::Parts, BodyState), H1Error> {
        loop {
            if let Some(parsed) = self.parse_head(method, keep_fields)? {
                return Ok(parsed);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(H1Error::Invalid("response head too large"));
            }
            let n = std::future::poll_fn(|cx| self.poll_fill(cx)).await?;
            if n == 0 {
                return Err(H1Error::Closed);
            }
        }
    }

    /// True when no byte of an answer arrived yet (so a request that met a closed connection
    /// can be told apart from one whose answer broke off).
    pub fn nothing_read(&self) -> bool {
        self.buf.is_empty()
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 4 {
            self.buf.reserve(READ_ROOM);
        }
        // `poll_read` (not `try_read_buf`): a short read clears the socket's readiness, so the
        // next `is_stale` costs no system call.
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }

    /// One parse of what is buffered: `None` until a whole head (past any informational ones) is
    /// there.
    fn parse_head(
        &mut self,
        method: &Method,
        keep_fields: bool,
    ) -> Result<Option<(http::response::Parts, BodyState)>, H1Error> {
        loop {
            // The head is split off whole first, so that the header values can share its bytes.
            let Some(len) = head_end(&self.buf) else {
                return Ok(None);
            };
            let head = self.buf.split_to(len).freeze();
            let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut []);
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut parsed, &head, &mut fields)
            {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => return Err(H1Error::Invalid("malformed response head")),
                Err(httparse::Error::TooManyHeaders) => return Err(H1Error::Invalid("too many header fields")),
                Err(_) => return Err(H1Error::Invalid("malformed response head")),
            }
            let code = parsed.code.unwrap_or(0);
            if (100..200).contains(&code) && code != 101 {
                continue;
            }
            let status = StatusCode::from_u16(code).map_err(|_| H1Error::Invalid("invalid status code"))?;
            let version = if parsed.version == Some(0) {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            };
            // Room for what the gateway adds (request id, rate-limit headers) without growing.
            let mut headers = match keep_fields {
                true => HeaderMap::with_capacity(parsed.headers.len() + 8),
                false => HeaderMap::new(),
            };
            let mut fields = Fields::default();
            for field in parsed.headers.iter() {
                if !fields.note(field.name, field.value)? || !keep_fields {
                    continue;
                }
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| H1Error::Invalid("invalid header name"))?;
                let value = HeaderValue::from_maybe_shared(head.slice_ref(field.value))
                    .map_err(|_| H1Error::Invalid("invalid header value"))?;
                headers.append(name, value);
            }
            let framing = framing(code, method, version, &fields)?;
            let keep_alive = framing != Framing::Eof && code != 101 && fields.keeps_alive(version);
            let mut parts = http::Response::new(()).into_parts().0;
            parts.status = status;
            parts.version = version;
            parts.headers = headers;
            return Ok(Some((parts, BodyState { framing, keep_alive })));
        }
    }
}

/// The length of the head at the start of `buf` (through the empty line that ends it; lines may
/// end in a bare LF, as httparse allows), when it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|b| *b == b'\n') {
        let at = from + i;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

/// How an answer's body is read, and whether its connection may be used again after it.
#[derive(Debug)]
pub struct BodyState {
    framing: Framing,
    keep_alive: bool,
}

/// What one read of a body gives.
pub enum Step {
    Data(Bytes),
    /// The body ended.
    End,
}

impl BodyState {
    /// True once the whole body has been read.
    pub fn is_end(&self) -> bool {
        self.framing == Framing::Done
    }

    /// The body's exact remaining length, when it is declared.
    pub fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            _ => None,
        }
    }

    /// Whether the connection can carry another request: the whole answer read, nothing after it.
    pub fn reusable(&self, conn: &Conn) -> bool {
        self.keep_alive && self.framing == Framing::Done && conn.buf.is_empty()
    }

    /// The next piece of the body, reading the socket when nothing is buffered.
    pub fn poll_step(&mut self, conn: &mut Conn, cx: &mut Context<'_>) -> Poll<Result<Step, H1Error>> {
        loop {
            if let Some(step) = self.decode(&mut conn.buf)? {
                return Poll::Ready(Ok(step));
            }
            let n = ready!(conn.poll_fill(cx))?;
            if n == 0 {
                if self.framing == Framing::Eof {
                    self.framing = Framing::Done;
                    return Poll::Ready(Ok(Step::End));
                }
                return Poll::Ready(Err(H1Error::Closed));
            }
        }
    }

    /// Decodes what `buf` holds: `None` when more bytes are needed.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, H1Error> {
        loop {
            match self.framing {
                Framing::Done => return Ok(Some(Step::End)),
                Framing::Length(0) => self.framing = Framing::Done,
                Framing::Length(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = (buf.len() as u64).min(left) as usize;
                    self.framing = match left - take as u64 {
                        0 => Framing::Done,
                        rest => Framing::Length(rest),
                    };
                    return Ok(Some(Step::Data(buf.split_to(take).freeze())));
                }
                Framing::Eof => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(Step::Data(buf.split().freeze())));
                }
                Framing::Chunked(state) => match self.decode_chunked(state, buf)? {
                    ChunkStep::More => return Ok(None),
                    ChunkStep::Data(data) => {
                        // Finish the framing that is already buffered, so the body knows its end
                        // (and frees its connection) with its last data.
                        self.settle_chunked(buf)?;
                        return Ok(Some(Step::Data(data)));
                    }
                    ChunkStep::Next(next) => self.framing = next,
                },
            }
        }
    }

    /// Moves past chunk framing that is already buffered and carries no data (a chunk's CRLF,
    /// the last chunk and its trailers).
    fn settle_chunked(&mut self, buf: &mut BytesMut) -> Result<(), H1Error> {
        while let Framing::Chunked(state) = self.framing {
            if matches!(state, Chunk::Data(_)) {
                return Ok(());
            }
            // A chunk-size line announcing data stops here: the data is the next step's.
            if state == Chunk::Size && !last_chunk_line_buffered(buf) {
                return Ok(());
            }
            match self.decode_chunked(state, buf)? {
                ChunkStep::Next(next) => self.framing = next,
                ChunkStep::More | ChunkStep::Data(_) => return Ok(()),
            }
        }
        Ok(())
    }

    fn decode_chunked(&mut self, state: Chunk, buf: &mut BytesMut) -> Result<ChunkStep, H1Error> {
        Ok(match state {
            Chunk::Size => {
                let Some(line_end) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                    return Ok(ChunkStep::More);
                };
                let size = chunk_size(&buf[..line_end])?;
                buf.advance(line_end + 2);
                ChunkStep::Next(Framing::Chunked(if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                }))
            }
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(ChunkStep::More);
                }
                let take = (buf.len() as u64).min(left) as usize;
                let data = buf.split_to(take).freeze();
                self.framing = Framing::Chunked(match left - take as u64 {
                    0 => Chunk::DataEnd,
                    rest => Chunk::Data(rest),
                });
                ChunkStep::Data(data)
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(ChunkStep::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(H1Error::Invalid("chunk data not followed by CRLF"));
                }
                buf.advance(2);
                ChunkStep::Next(Framing::Chunked(Chunk::Size))
            }
            Chunk::Trailers(seen) => {
                let Some(line_end) = find_crlf(buf, MAX_TRAILERS)? else {
                    return Ok(ChunkStep::More);
                };
                buf.advance(line_end + 2);
                if line_end == 0 {
                    ChunkStep::Next(Framing::Done)
                } else if seen + line_end > MAX_TRAILERS {
                    return Err(H1Error::Invalid("trailers too large"));
                } else {
                    ChunkStep::Next(Framing::Chunked(Chunk::Trailers(seen + line_end + 2)))
                }
            }
        })
    }
}

enum ChunkStep {
    More,
    Data(Bytes),
    Next(Framing),
}

/// True when `buf` starts with a whole chunk-size line of `0` (the last chunk).
fn last_chunk_line_buffered(buf: &[u8]) -> bool {
    let digits = buf.iter().take_while(|b| **b == b'0').count();
    digits > 0
        && buf[digits..].iter().position(|b| *b == b'\n').is_some()
        && matches!(buf.get(digits), Some(b'\r' | b';' | b' ' | b'\t'))
}

/// The position of the first CRLF in `buf`, refusing a line longer than `max`.
fn find_crlf(buf: &[u8], max: usize) -> Result<Option<usize>, H1Error> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(i) if i <= max => Ok(Some(i)),
        Some(_) => Err(H1Error::Invalid("chunk line too long")),
        None if buf.len() > max => Err(H1Error::Invalid("chunk line too long")),
        None => Ok(None),
    }
}

/// The size of a chunk-size line (`1a;ext=1`): hex digits, then optional whitespace and
/// extensions, which are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(H1Error::Invalid("invalid chunk size"));
    }
    let rest = &line[digits..];
    let rest_ok = rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t');
    if !rest_ok {
        return Err(H1Error::Invalid("invalid chunk size"));
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| H1Error::Invalid("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| H1Error::Invalid("invalid chunk size"))
}

/// What an answer's header fields say about its framing and its connection, read as the head is
/// taken in (so the hop-by-hop fields need not be put into the header map only to be looked up
/// and stripped again).
#[derive(Debug, Default)]
struct Fields {
    /// `Transfer-Encoding` was present; `true` when its last coding is `chunked`.
    transfer_encoding: Option<bool>,
    content_length: Option<u64>,
    close: bool,
    keep_alive: bool,
}

impl Fields {
    /// Takes in one field; `false` when it is hop-by-hop and says nothing beyond what is noted
    /// here (`Transfer-Encoding`, `Keep-Alive`, a `Connection` of only `close` or `keep-alive`),
    /// so it is left out of the header map. A `Connection` naming other fields stays, so that a
    /// proxy can strip the fields it names.
    fn note(&mut self, name: &str, value: &[u8]) -> Result<bool, H1Error> {
        let is = |known: &str| name.len() == known.len() && name.eq_ignore_ascii_case(known);
        match name.len() {
            14 if is("content-length") => {
                let text = std::str::from_utf8(value).map_err(|_| H1Error::Invalid("invalid Content-Length"))?;
                for part in text.split(',') {
                    let part = part.trim();
                    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(H1Error::Invalid("invalid Content-Length"));
                    }
                    let n: u64 = part.parse().map_err(|_| H1Error::Invalid("invalid Content-Length"))?;
                    if self.content_length.is_some_and(|seen| seen != n) {
                        return Err(H1Error::Invalid("differing Content-Length values"));
                    }
                    self.content_length = Some(n);
                }
                Ok(true)
            }
            17 if is("transfer-encoding") => {
                let last = value.rsplit(|b| *b == b',').next().unwrap_or_default();
                self.transfer_encoding = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                Ok(false)
            }
            10 if is("keep-alive") => Ok(false),
            10 if is("connection") => {
                let mut others = false;
                for token in value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    } else if !token.is_empty() {
                        others = true;
                    }
                }
                Ok(others)
            }
            _ => Ok(true),
        }
    }

    /// Whether the backend keeps the connection open after this answer.
    fn keeps_alive(&self, version: Version) -> bool {
        match version {
            Version::HTTP_10 => self.keep_alive && !self.close,
            _ => !self.close,
        }
    }
}

/// How the body of an answer with this status, to this method, is delimited (RFC 9112 §6.3).
fn framing(code: u16, method: &Method, version: Version, fields: &Fields) -> Result<Framing, H1Error> {
    if matches!(code, 101 | 204 | 304) || *method == Method::HEAD {
        return Ok(Framing::Done);
    }
    if *method == Method::CONNECT && (200..300).contains(&code) {
        return Ok(Framing::Done);
    }
    if let Some(chunked) = fields.transfer_encoding {
        if version == Version::HTTP_10 {
            return Err(H1Error::Invalid("Transfer-Encoding in an HTTP/1.0 response"));
        }
        return Ok(if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::Eof
        });
    }
    Ok(match fields.content_length {
        Some(0) => Framing::Done,
        Some(n) => Framing::Length(n),
        None => Framing::Eof,
    })
}

/// Writes a request head into `out`: the request line (always HTTP/1.1), every field of
/// `headers` in their order, and `Content-Length` for `body_len` bytes when the fields declare no
/// length of their own. A `Transfer-Encoding` is dropped: the body, if any, is whole.
pub fn encode_head(method: &Method, target: &str, headers: &HeaderMap, body_len: usize, out: &mut Vec<u8>) {
    out.reserve(64 + target.len() + headers.len() * 32 + body_len);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut declared = false;
    for (name, value) in headers {
        if name == TRANSFER_ENCODING {
            continue;
        }
        declared |= name == CONTENT_LENGTH;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 && !declared {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, wire: &[u8], split_at: &[usize]) -> Result<(Vec<u8>, bool), H1Error> {
        let mut state = BodyState {
            framing,
            keep_alive: true,
        };
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut cuts: Vec<usize> = split_at.to_vec();
        cuts.push(wire.len());
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[from..cut]);
            from = cut;
            while let Some(step) = state.decode(&mut buf)? {
                match step {
                    Step::Data(d) => out.extend_from_slice(&d),
                    Step::End => return Ok((out, buf.is_empty())),
                }
            }
        }
        Err(H1Error::Closed)
    }

    #[test]
    fn chunked_bodies_decode_whole_or_cut_anywhere() {
        let wire = b"5\r\nhello\r\n1;ext=a\r\n \r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for cut in 0..wire.len() {
            let (body, clean) = decode_all(Framing::Chunked(Chunk::Size), wire, &[cut]).unwrap();
            assert_eq!(body, b"hello  world", "cut at {cut}");
            assert!(clean);
        }
    }

    #[test]
    fn a_chunked_body_knows_its_end_with_its_last_data_when_the_end_is_buffered() {
        let mut state = BodyState {
            framing: Framing::Chunked(Chunk::Size),
            keep_alive: true,
        };
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        let Some(Step::Data(d)) = state.decode(&mut buf).unwrap() else {
            panic!("data expected")
        };
        assert_eq!(&d[..], b"abc");
        assert!(state.is_end());
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_chunk_framing_is_an_error() {
        for wire in [
            &b"zz\r\n"[..],
            b"3\r\nabcX\r\n",
            b"3x\r\nabc\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
        ] {
            assert!(
                decode_all(Framing::Chunked(Chunk::Size), wire, &[]).is_err(),
                "{wire:?}"
            );
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Result<Fields, H1Error> {
        let mut fields = Fields::default();
        for (name, value) in pairs {
            fields.note(name, value.as_bytes())?;
        }
        Ok(fields)
    }

    #[test]
    fn content_length_framing_follows_rfc_9112() {
        let get = Method::GET;
        let v11 = Version::HTTP_11;
        let h = fields(&[("Content-Length", "5"), ("content-length", "5, 5")]).unwrap();
        assert_eq!(framing(200, &get, v11, &h).unwrap(), Framing::Length(5));
        assert_eq!(framing(200, &Method::HEAD, v11, &h).unwrap(), Framing::Done);
        assert_eq!(framing(304, &get, v11, &h).unwrap(), Framing::Done);
        assert!(fields(&[("Content-Length", "5"), ("Content-Length", "6")]).is_err());
        let te = fields(&[("Transfer-Encoding", "gzip, chunked"), ("Content-Length", "5")]).unwrap();
        assert_eq!(framing(200, &get, v11, &te).unwrap(), Framing::Chunked(Chunk::Size));
        assert!(framing(200, &get, Version::HTTP_10, &te).is_err());
        let gz = fields(&[("transfer-encoding", "gzip")]).unwrap();
        assert_eq!(framing(200, &get, v11, &gz).unwrap(), Framing::Eof);
        assert_eq!(framing(200, &get, v11, &Fields::default()).unwrap(), Framing::Eof);
        assert!(fields(&[("Content-Length", "+5")]).is_err());
        assert!(fields(&[("Content-Length", "")]).is_err());
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let close = fields(&[("Connection", "Upgrade, Close")]).unwrap();
        assert!(!close.keeps_alive(Version::HTTP_11));
        assert!(Fields::default().keeps_alive(Version::HTTP_11));
        assert!(!Fields::default().keeps_alive(Version::HTTP_10));
        let keep = fields(&[("connection", "keep-alive")]).unwrap();
        assert!(keep.keeps_alive(Version::HTTP_10));
    }

    #[test]
    fn hop_by_hop_fields_stay_out_of_the_header_map_unless_they_name_others() {
        let mut f = Fields::default();
        assert!(!f.note("Connection", b"keep-alive").unwrap());
        assert!(!f.note("Keep-Alive", b"timeout=5").unwrap());
        assert!(!f.note("Transfer-Encoding", b"chunked").unwrap());
        assert!(
            f.note("Connection", b"close, x-secret").unwrap(),
            "x-secret must be stripped by name"
        );
        assert!(f.note("Content-Length", b"3").unwrap());
        assert!(f.note("ETag", b"\"a\"").unwrap());
    }

    #[test]
    fn a_head_ends_at_its_empty_line_with_or_without_cr() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), Some(25));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\nA: b\n\nbody"), Some(22));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r"), None);
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[test]
    fn the_head_is_written_as_hyper_writes_it() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.append("host", HeaderValue::from_static("b:1"));
        let mut out = Vec::new();
        encode_head(&Method::POST, "/p?q=1", &h, 2, &mut out);
        assert_eq!(
            out,
            b"POST /p?q=1 HTTP/1.1\r\nx-a: 1\r\nhost: b:1\r\ncontent-length: 2\r\n\r\n"
        );
        out.clear();
        encode_head(&Method::GET, "/", &HeaderMap::new(), 0, &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
    }
}
