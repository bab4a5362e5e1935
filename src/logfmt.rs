//! The text log format for log files and collectors: the same lines as `tracing-subscriber`'s
//! default (`Full`, no colours), written with less work.
//!
//! Why: `serve` writes one line per request, and the default formatter spent about a tenth of a
//! passthrough request's instructions on it (every field through `Debug` and padding, colour
//! wrappers even with colours off, the date recomputed for every line). Here numbers go through
//! `itoa`, plain strings are copied as they are, and the date part of the timestamp is kept per
//! second. The output is byte for byte the default's (a test below compares the two), so nothing
//! that reads Facade's logs changes. A terminal still gets the default coloured format.

use crate::logbuf::LogBuffer;
use std::cell::RefCell;
use std::fmt::{self, Write};
use std::sync::{Arc, OnceLock};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as `Format<Full>` without ANSI does.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFormat;

/// Formats fields as `DefaultFields` does (span fields and event fields alike).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFields;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        write_timestamp(&mut writer, std::time::SystemTime::now())?;
        writer.write_char(' ')?;
        writer.write_str(match *meta.level() {
            Level::TRACE => "TRACE ",
            Level::DEBUG => "DEBUG ",
            Level::INFO => " INFO ",
            Level::WARN => " WARN ",
            Level::ERROR => "ERROR ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        } else {
            write_request_scope(&mut writer)?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes fields as `DefaultVisitor` does: the message as it is, then ` name=value` with the
/// value's `Debug` form (strings quoted and escaped).
struct FieldWriter<'a> {
    writer: Writer<'a>,
    empty: bool,
    result: fmt::Result,
}

impl FieldWriter<'_> {
    /// Starts a field: the separating space (none before the first) and, unless it is the
    /// message, `name=`. Returns false for fields that are not written.
    fn start(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        if !self.empty {
            if let Err(e) = self.writer.write_char(' ') {
                self.result = Err(e);
                return false;
            }
        }
        self.empty = false;
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self.writer.write_str(name).and_then(|_| self.writer.write_char('='));
        }
        self.result.is_ok()
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            write_escaped(&mut self.writer, value)
        } else {
            write_str_value(&mut self.writer, value)
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = self.writer.write_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            self.result = self.writer.write_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !self.start(field) {
            return;
        }
        let mut text = value.to_string();
        if let Some(source) = value.source() {
            let mut sources = Vec::new();
            let mut next = Some(source);
            while let Some(s) = next {
                sources.push(s.to_string());
                next = s.source();
            }
            let _ = write!(text, " {}.sources={:?}", field.name(), Sources(&sources));
        }
        self.result = write_escaped(&mut self.writer, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            // Messages are escaped as the default does, so a logged value cannot drive a terminal.
            let mut escaping = Escaping(&mut self.writer);
            write!(escaping, "{value:?}")
        } else {
            write!(self.writer, "{value:?}")
        };
    }
}

/// A list of error sources, printed as `[a, b]`.
struct Sources<'a>(&'a [String]);

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|s| Plain(s))).finish()
    }
}

/// A string whose `Debug` form is the string itself.
struct Plain<'a>(&'a str);

impl fmt::Debug for Plain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A string field's value as `Debug` writes it: quoted, escaped where needed.
fn write_str_value(writer: &mut Writer<'_>, value: &str) -> fmt::Result {
    if value
        .bytes()
        .all(|b| (b.is_ascii_graphic() && b != b'"' && b != b'\\') || b == b' ')
    {
        // Nothing for `Debug` to escape: the string between quotes, as it is.
        writer.write_char('"')?;
        writer.write_str(value)?;
        writer.write_char('"')
    } else {
        write!(writer, "{value:?}")
    }
}

fn write_escaped(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    Escaping(writer).write_str(text)
}

/// Escapes the characters that drive terminals (ESC, BEL, BS, FF, DEL and C1 controls), as
/// `tracing-subscriber` does for messages.
struct Escaping<'a, 'b>(&'a mut Writer<'b>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let risky = |c: char| matches!(c, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}');
        if !s.contains(risky) {
            return self.0.write_str(s);
        }
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                c if risky(c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

thread_local! {
    /// The second last formatted and its `YYYY-MM-DDTHH:MM:SS.` text.
    static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// `2026-12-02T05:53:53.741122Z`, as `tracing-subscriber`'s `SystemTime` writes it (UTC,
/// microseconds).
fn write_timestamp(writer: &mut Writer<'_>, now: std::time::SystemTime) -> fmt::Result {
    // Whole seconds rounded down and the microseconds after them, before 1970 too.
    let (secs, micros) = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(e) => match (e.duration().as_secs() as i64, e.duration().subsec_micros()) {
            (s, 0) => (-s, 0),
            (s, m) => (-s - 1, 1_000_000 - m),
        },
    };
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let _ = write!(cached.1, "{}", civil(secs, 0));
            // Keep the date and time up to the decimal point.
            let keep = cached.1.len() - "000000Z".len();
            cached.1.truncate(keep);
            cached.0 = secs;
        }
        writer.write_str(&cached.1)?;
        let mut digits = *b"000000Z";
        let mut rest = micros;
        for d in digits[..6].iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        writer.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    })
}

/// A UTC date and time from seconds since 1970.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

fn civil(secs: i64, micros: u32) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
        micros,
    }
}

impl fmt::Display for Civil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.year > 9999 {
            write!(f, "+{}", self.year)?;
        } else if self.year < 0 {
            write!(f, "{:05}", self.year)?;
        } else {
            write!(f, "{:04}", self.year)?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            self.month, self.day, self.hour, self.minute, self.second, self.micros
        )
    }
}

thread_local! {
    /// The id of the request whose future is being polled on this thread (see `RequestScope`).
    static CURRENT_REQUEST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    /// The line being written by `RequestLine::write`.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Where `serve` writes log lines without going through `tracing` (text lines to a buffer).
static DIRECT: OnceLock<Arc<LogBuffer>> = OnceLock::new();

/// Lets the request pipeline write its lines straight into `buffer`: the text format to a log
/// file or collector, which `TextFormat` also writes into the same buffer, so lines keep their
/// order. Without it (JSON logs, a terminal, tests) the pipeline logs through `tracing`.
pub fn write_directly(buffer: Arc<LogBuffer>) {
    let _ = DIRECT.set(buffer);
}

/// Whether the request pipeline writes its lines itself (`write_directly` was called).
pub fn direct() -> bool {
    DIRECT.get().is_some()
}

pin_project_lite::pin_project! {
    /// A request's future with the request's id made current on this thread while it is
    /// polled: every event written meanwhile starts with `request{request_id="…"}:`, as inside a
    /// `request` span. Why not the span (when lines are written directly): creating, entering and
    /// leaving a `tracing` span, and formatting its fields, was about a twelfth of a passthrough
    /// request's instructions. With JSON lines or at a terminal it enters a real span instead.
    pub struct RequestScope<F> {
        id: Option<Arc<str>>,
        span: tracing::Span,
        #[pin]
        inner: F,
    }
}

impl<F> RequestScope<F> {
    /// `inner`, scoped by the request id `id` for the directly written lines.
    pub fn direct(id: &str, inner: F) -> RequestScope<F> {
        RequestScope {
            id: Some(id.into()),
            span: tracing::Span::none(),
            inner,
        }
    }

    /// `inner`, entering `span` whenever it is polled.
    pub fn span(span: tracing::Span, inner: F) -> RequestScope<F> {
        RequestScope { id: None, span, inner }
    }
}

impl<F: std::future::Future> std::future::Future for RequestScope<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        /// Restores the previous scope when the poll ends, a panic included.
        struct Restore(Option<Arc<str>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT_REQUEST.with(|c| *c.borrow_mut() = previous);
            }
        }
        let Some(id) = this.id else {
            let _entered = this.span.enter();
            return this.inner.poll(cx);
        };
        let _restore = Restore(CURRENT_REQUEST.with(|c| c.replace(Some(id.clone()))));
        this.inner.poll(cx)
    }
}

/// `request{request_id="…"}: ` when a `RequestScope` is being polled on this thread.
fn write_request_scope(writer: &mut Writer<'_>) -> fmt::Result {
    CURRENT_REQUEST.with(|c| match &*c.borrow() {
        Some(id) => {
            writer.write_str("request{request_id=")?;
            write_str_value(writer, id)?;
            writer.write_str("}: ")
        }
        None => Ok(()),
    })
}

/// One request's line, as it is written for `request` events by the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// The event's target (the module that logs it).
    pub target: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// The method.
    pub method: &'a str,
    /// The route's label, `-` when none matched.
    pub route: &'a str,
    /// The request path.
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// Rounded milliseconds.
    pub latency_ms: f64,
}

impl RequestLine<'_> {
    /// Writes the line into the direct buffer: the bytes `TextFormat` writes for
    /// `info!(request_id, method = %…, route, path = %…, status, latency_ms, "request")`.
    pub fn write(&self) {
        let Some(buffer) = DIRECT.get() else { return };
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            if self
                .format(&mut Writer::new(&mut *line), std::time::SystemTime::now())
                .is_ok()
            {
                buffer.append(line.as_bytes());
            }
        });
    }

    fn format(&self, w: &mut Writer<'_>, now: std::time::SystemTime) -> fmt::Result {
        write_timestamp(w, now)?;
        w.write_str("  INFO ")?;
        write_request_scope(w)?;
        w.write_str(self.target)?;
        w.write_str(": request request_id=")?;
        write_str_value(w, self.request_id)?;
        w.write_str(" method=")?;
        w.write_str(self.method)?;
        w.write_str(" route=")?;
        write_str_value(w, self.route)?;
        w.write_str(" path=")?;
        w.write_str(self.path)?;
        w.write_str(" status=")?;
        w.write_str(itoa::Buffer::new().format(self.status))?;
        w.write_str(" latency_ms=")?;
        write_hundredths(w, self.latency_ms)?;
        w.write_char('\n')
    }
}

/// A number rounded to hundredths as `{:?}` writes it (`0.47`, `12.0`, `1234.5`), with integer
/// arithmetic; anything else (negative, not finite, too large) through `{:?}` itself.
fn write_hundredths(w: &mut Writer<'_>, value: f64) -> fmt::Result {
    let cents = (value * 100.0).round();
    if value.is_sign_negative() || !(0.0..1e15).contains(&cents) || cents / 100.0 != value {
        return write!(w, "{value:?}");
    }
    let cents = cents as u64;
    let mut digits = itoa::Buffer::new();
    w.write_str(digits.format(cents / 100))?;
    w.write_char('.')?;
    let fraction = cents % 100;
    if fraction.is_multiple_of(10) {
        w.write_str(digits.format(fraction / 10))
    } else {
        if fraction < 10 {
            w.write_char('0')?;
        }
        w.write_str(digits.format(fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    fn events() {
        let span = tracing::info_span!("request", request_id = "4a03f5ba-ff7b", n = 3);
        let _g = span.enter();
        tracing::info!(
            request_id = "4a03f5ba-ff7b",
            method = %http::Method::GET,
            route = "/api/orders",
            path = %"/api/orders/ord-77812",
            status = 200u16,
            latency_ms = 0.47,
            "request"
        );
        tracing::warn!(url = "http://127.0.0.1:1/x", attempts = 2u32, error = %"could not reach", "backend call failed");
        tracing::debug!(
            quoted = "a \"b\" \\ c\nd",
            negative = -5i64,
            yes = true,
            r#type = "x",
            "with \x1b[31m escape \u{85}"
        );
        let inner = std::io::Error::other("inner cause");
        let err = Outer(inner);
        tracing::error!(error = &err as &(dyn std::error::Error + 'static), "failed");
        tracing::info!(empty = "", unicode = "naïve ✓", "plain message {}", 42);
        drop(_g);
        tracing::info!("outside any span");
    }

    /// The lines `emit` writes through our formatter (or, with `ours` false, through
    /// tracing-subscriber's default), without their timestamps.
    fn captured(ours: bool, emit: impl FnOnce()) -> Vec<String> {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(out.clone());
        if ours {
            let subscriber = builder.fmt_fields(TextFields).event_format(TextFormat).finish();
            tracing::subscriber::with_default(subscriber, emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        let text = String::from_utf8(out.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        text.lines().map(without_timestamp).collect()
    }

    fn without_timestamp(line: &str) -> String {
        line.split_once(' ')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
    }

    /// Both formatters' lines.
    fn lines(ours: bool) -> Vec<String> {
        captured(ours, events)
    }

    #[test]
    fn lines_are_the_default_formatters_lines() {
        let ours = lines(true);
        let theirs = lines(false);
        assert_eq!(ours.len(), 6, "{ours:#?}");
        assert_eq!(ours, theirs);
    }

    /// Events inside a `request` span with our formatter, or inside a `RequestScope`.
    /// `how`: 0 the direct scope, 1 the scope entering a span, 2 tracing's own `instrument`.
    fn scoped_lines(how: u8) -> Vec<String> {
        let id = "4a03f5ba \"odd\" id";
        let inner = async {
            tracing::warn!(url = "http://127.0.0.1:1/x", "backend call failed");
            tracing::debug!(n = 3u32, "backend call");
        };
        captured(true, || {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            use std::future::Future;
            if how == 0 {
                let mut fut = std::pin::pin!(RequestScope::direct(id, inner));
                assert!(fut.as_mut().poll(&mut cx).is_ready());
            } else if how == 1 {
                let span = tracing::info_span!("request", request_id = id);
                let mut fut = std::pin::pin!(RequestScope::span(span, inner));
                assert!(fut.as_mut().poll(&mut cx).is_ready());
            } else {
                let span = tracing::info_span!("request", request_id = id);
                let mut fut = std::pin::pin!(tracing::Instrument::instrument(inner, span));
                assert!(fut.as_mut().poll(&mut cx).is_ready());
            }
            tracing::info!("after the request");
        })
    }

    #[test]
    fn events_in_a_request_scope_carry_its_id_as_in_a_request_span() {
        let scoped = scoped_lines(0);
        assert_eq!(scoped.len(), 3, "{scoped:#?}");
        assert!(
            scoped[0].starts_with(" WARN request{request_id=\"4a03f5ba \\\"odd\\\" id\"}: "),
            "{scoped:#?}"
        );
        assert!(!scoped[2].contains("request{"), "the scope ends with its future's poll");
        assert_eq!(scoped, scoped_lines(2));
        assert_eq!(scoped_lines(1), scoped_lines(2));
    }

    #[test]
    fn request_lines_written_directly_are_the_lines_of_the_request_event() {
        let cases = [
            (
                "4a03f5ba-ff7b",
                http::Method::GET,
                "/api/orders",
                "/api/orders/ord-77812",
                200u16,
                0.47,
            ),
            (
                "a \"quoted\" \\ id",
                http::Method::POST,
                "-",
                "/caf%C3%A9/naïve",
                404,
                0.0,
            ),
            ("x", http::Method::DELETE, "/mobile/api/home", "/", 503, 1234.5),
            ("y", http::Method::PATCH, "route with space", "/p", 431, 12.0),
        ];
        for (request_id, method, route, path, status, latency_ms) in cases {
            let traced = captured(true, || {
                tracing::info!(request_id, method = %method, route, path = %path, status, latency_ms, "request");
            });
            let line = RequestLine {
                target: module_path!(),
                request_id,
                method: method.as_str(),
                route,
                path,
                status,
                latency_ms,
            };
            let mut direct = String::new();
            line.format(&mut Writer::new(&mut direct), std::time::SystemTime::now())
                .unwrap_or(());
            assert!(direct.ends_with('\n'));
            assert_eq!(vec![without_timestamp(&direct[..direct.len() - 1])], traced);
        }
    }

    #[test]
    fn hundredths_are_written_as_debug_writes_them() {
        let mut values: Vec<f64> = (0..200_000u64).map(|c| c as f64 / 100.0).collect();
        values.extend((0..2000u64).map(|i| ((i * 7_919_993) as f64 * 100_000.0).round() / 100.0 / 1000.0));
        values.extend([
            0.1 + 0.2,
            1e-7,
            123456789.123,
            -1.5,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            1e16,
        ]);
        for v in values {
            let mut ours = String::new();
            write_hundredths(&mut Writer::new(&mut ours), v).unwrap_or(());
            assert_eq!(ours, format!("{v:?}"));
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut s = String::new();
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_796_190_833, 741_122_999);
        write_timestamp(&mut Writer::new(&mut s), at).unwrap_or(());
        assert_eq!(s, "2026-12-02T05:53:53.741122Z");
        // The cached second is reused, and a new second replaces it.
        s.clear();
        write_timestamp(&mut Writer::new(&mut s), at + std::time::Duration::from_micros(5)).unwrap_or(());
        assert_eq!(s, "2026-12-02T05:53:53.741127Z");
        s.clear();
        write_timestamp(
            &mut Writer::new(&mut s),
            std::time::UNIX_EPOCH + std::time::Duration::new(951_782_400, 0),
        )
        .unwrap_or(());
        assert_eq!(s, "2000-02-29T00:00:00.000000Z");
        for (secs, text) in [
            (0i64, "1970-01-01T00:00:00.000000Z"),
            (86_399, "1970-01-01T23:59:59.000000Z"),
            (1_709_164_800, "2024-02-29T00:00:00.000000Z"),
            (4_102_444_800, "2100-01-01T00:00:00.000000Z"),
            (253_402_300_799, "9999-12-31T23:59:59.000000Z"),
            (-1, "1969-12-31T23:59:59.000000Z"),
        ] {
            assert_eq!(civil(secs, 0).to_string(), text);
        }
    }
}
