//! Log output. `--log-format=json` writes Stakater's (logrus) line shape, so pipelines built for
//! Stakater keep parsing it: `{"level":"info","msg":"…","time":"<RFC 3339>"}` with the event's
//! fields and those of the spans it is in (`workload`, `kind`, `scope`, …), flat, keys sorted.

use std::fmt;
use std::io::IsTerminal as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber; `RELOADER_LOG` (an env filter) overrides `--log-level`.
pub fn init(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELOADER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(settings.log_level.filter_directive()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match settings.log_format {
        LogFormat::Json => builder.fmt_fields(JsonFields::new()).event_format(StakaterJson).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Stakater's JSON line: `level` (lower case), `msg`, `time`, then every field.
pub struct StakaterJson;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(name(field), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(name(field), Value::from(format!("{value:?}")));
    }
}

/// The message is Stakater's `msg`.
fn name(field: &Field) -> String {
    match field.name() {
        "message" => "msg".into(),
        other => other.into(),
    }
}

impl<S, N> FormatEvent<S, N> for StakaterJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        line.insert("level".into(), Value::from(level));
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        line.insert("msg".into(), fields.0.remove("msg").unwrap_or(Value::from("")));
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("time".into(), Value::from(time));
        // The spans' fields (outermost first), then the event's own.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(formatted) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(formatted) {
                    line.extend(map);
                }
            }
        }
        line.extend(fields.0);
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_stakaters_field_names_and_the_span_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(StakaterJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("reconcile", workload = "Deployment/ns/app");
            let _entered = span.enter();
            tracing::warn!(attempt = 2, "reconcile failed; retrying");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "warn");
        assert_eq!(line["msg"], "reconcile failed; retrying");
        assert_eq!(line["workload"], "Deployment/ns/app");
        assert_eq!(line["attempt"], 2);
        let time = line["time"].as_str().unwrap();
        assert!(time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).is_ok());
        // Keys sorted, as logrus (encoding/json of a map) writes them.
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }
}
