//! The JSON lines of [`super::init`], written field by field: the same shape as
//! `tracing_subscriber`'s JSON formatter (`timestamp`, `level`, `fields`, `target`, and `span` and
//! `spans` inside a span), without the copies it makes on the way. That formatter keeps every
//! field as a `serde_json::Value` in a map, formats each `Debug` field into a `String` first, and
//! parses each span's fields back from text for every line; on `serve`'s acknowledgement path
//! (one span and one line per request) that was about a third of the CPU a request took.
//!
//! Span fields are kept as the text of a JSON object ([`JsonFields`]), so a line copies them as
//! they are and adds the span's `name`. Keys are written in the order they were recorded (the
//! upstream formatter sorts a span's keys; JSON objects have no order).

use std::cell::Cell;
use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Formats a span's fields as the text of a JSON object.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFields;

/// Formats an event as one JSON line.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

/// Writes what it is given as the inside of a JSON string (escaped, without the quotes).
struct Escaped<'a>(&'a mut dyn Write);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most text (names, ids, messages) needs no escape: one check, one write.
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", b)?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// Writes `s` as a JSON string.
fn string(out: &mut dyn Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(s)?;
    out.write_char('"')
}

/// Writes each field as `"name":value`, separated by commas (`first`: no field is written yet).
struct Fields<'a> {
    out: &'a mut dyn Write,
    first: bool,
    result: fmt::Result,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut dyn Write, first: bool) -> Fields<'a> {
        Fields { out, first, result: Ok(()) }
    }

    /// The field's name and colon, or `None` for a field not written (the `log` crate's metadata).
    fn key(&mut self, field: &Field) -> Option<&mut dyn Write> {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return None;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let comma = if std::mem::take(&mut self.first) { "" } else { "," };
        self.result = self.out.write_str(comma).and_then(|()| string(self.out, name)).and_then(|()| self.out.write_char(':'));
        self.result.is_ok().then_some(&mut *self.out as &mut dyn Write)
    }

    fn value(&mut self, field: &Field, write: impl FnOnce(&mut dyn Write) -> fmt::Result) {
        if let Some(out) = self.key(field) {
            self.result = write(out);
        }
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json writes an f64 (`1.0`, not `1`), or null when it is not finite.
        self.value(field, |out| match serde_json::Number::from_f64(value) {
            Some(number) => write!(out, "{number}"),
            None => out.write_str("null"),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, |out| out.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, |out| out.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, |out| out.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, |out| string(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// Text gathered on the stack and handed on in one write: a span's fields go to a new `String`
/// (tracing-subscriber's), which then allocates once at its size instead of growing four times
/// (8, 16, 32, 64 bytes for a request's span). Text that does not fit goes to a `String` of its own.
struct Staged {
    buf: [u8; Staged::CAPACITY],
    len: usize,
    spilled: Option<String>,
}

impl Staged {
    const CAPACITY: usize = 256;

    fn new() -> Staged {
        Staged { buf: [0; Staged::CAPACITY], len: 0, spilled: None }
    }

    fn as_str(&self) -> &str {
        match &self.spilled {
            Some(text) => text,
            // Only whole `&str`s are copied in, so the bytes are UTF-8.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default(),
        }
    }
}

impl Write for Staged {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(text) = &mut self.spilled {
            text.push_str(s);
        } else if self.len + s.len() <= Staged::CAPACITY {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut text = String::with_capacity(2 * (self.len + s.len()));
            text.push_str(self.as_str());
            text.push_str(s);
            self.spilled = Some(text);
        }
        Ok(())
    }
}

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut staged = Staged::new();
        staged.write_char('{')?;
        let mut visit = Fields::new(&mut staged, true);
        fields.record(&mut visit);
        visit.result?;
        staged.write_char('}')?;
        writer.write_str(staged.as_str())
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        // `current` is `{...}` as written above (or empty): reopen it, add, close it again.
        let text = &mut current.fields;
        if !text.ends_with('}') {
            text.clear();
            text.push('{');
        } else {
            text.pop();
        }
        let first = text.len() <= 1;
        let mut visit = Fields::new(text, first);
        fields.record(&mut visit);
        visit.result?;
        text.push('}');
        Ok(())
    }
}

/// Writes the time now as `tracing_subscriber`'s `SystemTime` writes it, in UTC to the microsecond
/// (`2026-12-06T04:41:16.449148Z`).
fn now(out: &mut dyn Write) -> fmt::Result {
    timestamp(out, std::time::SystemTime::now())
}

/// Writes `at` as [`now`] does. The date and time of day are written once per second on each
/// thread (`core::fmt`, a field at a time, took more of a request's log line than its fields).
fn timestamp(out: &mut dyn Write, at: std::time::SystemTime) -> fmt::Result {
    use chrono::Datelike;
    thread_local! {
        /// The last second written on this thread (unix seconds) and its `YYYY-MM-DDTHH:MM:SS`.
        static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    }
    let since = match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => since,
        Err(_) => return uncached(out, at),
    };
    let (cached, mut second) = SECOND.get();
    if cached != since.as_secs() {
        let date = i64::try_from(since.as_secs()).ok().and_then(|secs| chrono::DateTime::from_timestamp(secs, 0)).filter(|d| d.year() <= 9999);
        let Some(date) = date else { return uncached(out, at) };
        std::io::Write::write_fmt(&mut &mut second[..], format_args!("{}", date.format("%Y-%m-%dT%H:%M:%S"))).map_err(|_| fmt::Error)?;
        SECOND.set((since.as_secs(), second));
    }
    let mut fraction = *b".000000Z";
    let mut micros = since.subsec_micros();
    for digit in fraction[1..7].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    // Both are ASCII, written above.
    out.write_str(std::str::from_utf8(&second).map_err(|_| fmt::Error)?)?;
    out.write_str(std::str::from_utf8(&fraction).map_err(|_| fmt::Error)?)
}

/// A time the cache does not cover (before 1970, after 9999), written whole.
fn uncached(out: &mut dyn Write, at: std::time::SystemTime) -> fmt::Result {
    out.write_str(&chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// Writes `span` as `{<its fields>,"name":"<its name>"}`.
fn span<S>(out: &mut dyn Write, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    let extensions = span.extensions();
    let fields = extensions.get::<FormattedFields<JsonFields>>().map(|f| f.fields.as_str()).unwrap_or("{}");
    let inner = fields.strip_prefix('{').and_then(|f| f.strip_suffix('}')).unwrap_or("");
    out.write_char('{')?;
    if !inner.is_empty() {
        out.write_str(inner)?;
        out.write_char(',')?;
    }
    out.write_str("\"name\":")?;
    string(out, span.metadata().name())?;
    out.write_char('}')
}

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, JsonFields>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        now(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_str("\",\"fields\":{")?;
        let mut visit = Fields::new(&mut writer, true);
        event.record(&mut visit);
        visit.result?;
        writer.write_str("},\"target\":")?;
        string(&mut writer, meta.target())?;
        let current = event.parent().and_then(|id| ctx.span(id)).or_else(|| ctx.lookup_current());
        if let Some(current) = current {
            writer.write_str(",\"span\":")?;
            span(&mut writer, &current)?;
            writer.write_str(",\"spans\":[")?;
            if let Some(leaf) = ctx.lookup_current() {
                for (i, each) in leaf.scope().from_root().enumerate() {
                    if i > 0 {
                        writer.write_char(',')?;
                    }
                    span(&mut writer, &each)?;
                }
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
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

    impl Captured {
        fn lines(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
        }
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Endpoint {
        Commands,
    }

    /// Logs the same events (every kind of field, awkward strings, nested spans, a field
    /// recorded later) through `subscriber`.
    fn log_through(subscriber: impl Subscriber + Send + Sync + 'static) {
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("plain");
            tracing::warn!(count = 3u64, delta = -2i64, ratio = 0.5f64, whole = 1.0f64, ok = true, nan = f64::NAN, "numbers and {}", "args");
            tracing::error!(text = "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓", endpoint = ?Endpoint::Commands, "strings");
            let outer = tracing::info_span!("slack_command", request_id = "0123456789abcdef", note = ?"dbg \"x\"");
            let _o = outer.enter();
            tracing::info!(session = "pp-1", "in one span");
            let inner = tracing::info_span!("follow_up", request_id = "0123456789abcdef", what = "approve", later = tracing::field::Empty);
            inner.record("later", 42u64);
            let _i = inner.enter();
            tracing::info!(r#type = "raw", "in two spans");
            let empty = tracing::info_span!("empty");
            let _e = empty.enter();
            tracing::debug!("below the level");
            tracing::info!("in three spans, the last without fields");
            // Longer than what is staged on the stack: spilled into a string of its own.
            let long = "x".repeat(200);
            let big = tracing::info_span!("big", first = long.as_str(), second = "é ✓ \" ".repeat(40).as_str());
            let _b = big.enter();
            tracing::info!("in a span whose fields do not fit on the stack");
        });
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc_to_the_microsecond_as_upstream_writes_them() {
        use chrono::{DateTime, SecondsFormat, Utc};
        let instants = [
            "1970-01-01T00:00:00.000000Z",
            "2024-02-29T23:59:59.999999Z",
            "2024-03-01T00:00:00.000001Z",
            "2026-12-06T04:41:16.449148Z",
            "2026-12-06T04:41:16.000010Z",
            "2026-12-31T23:59:59.500000Z",
            "2027-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.123456Z",
        ];
        // In order and back again, so that each is written both after another second and after
        // the same one (the cache of the second).
        for text in instants.iter().chain(instants.iter().rev()).chain(instants.iter()) {
            let at: DateTime<Utc> = text.parse().unwrap();
            let mut written = String::new();
            timestamp(&mut written, at.into()).unwrap();
            assert_eq!(written, *text);
            assert_eq!(written, at.to_rfc3339_opts(SecondsFormat::Micros, true));
        }
        let mut written = String::new();
        now(&mut written).unwrap();
        let parsed: DateTime<Utc> = written.parse().expect("now is RFC 3339");
        assert!((Utc::now() - parsed).num_seconds().abs() < 5, "{written} is now");
        // Outside what the cache covers, written whole.
        for (at, text) in [(std::time::UNIX_EPOCH - std::time::Duration::from_micros(1), "1969-12-31T23:59:59.999999Z"), (std::time::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_800), "+10000-01-01T00:00:00.000000Z")] {
            let mut written = String::new();
            timestamp(&mut written, at).unwrap();
            assert_eq!(written, text);
        }
    }

    #[test]
    fn lines_say_what_the_upstream_json_formatter_says() {
        let (ours, theirs) = (Captured::default(), Captured::default());
        log_through(tracing_subscriber::fmt().fmt_fields(JsonFields).event_format(JsonLines).with_writer(ours.clone()).with_max_level(tracing::Level::INFO).finish());
        log_through(tracing_subscriber::fmt().json().with_writer(theirs.clone()).with_max_level(tracing::Level::INFO).finish());
        let (mut ours, mut theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 7, "{ours:#?}");
        for line in ours.iter_mut().chain(theirs.iter_mut()) {
            let stamp = line.as_object_mut().unwrap().remove("timestamp").expect("a timestamp");
            let stamp = stamp.as_str().unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "an RFC 3339 timestamp: {stamp}");
        }
        assert_eq!(ours, theirs);
    }
}
