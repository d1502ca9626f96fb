//! Prometheus counters and histograms of model calls, rendered as text for
//! `GET /metrics` together with each engine's live gauges.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use basalt_engine::{EmbedStats, EngineStats};

const BUCKETS_SECONDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS_SECONDS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS_SECONDS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, String), u64>,
    input_tokens: BTreeMap<String, u64>,
    output_tokens: BTreeMap<String, u64>,
    cached_tokens: BTreeMap<String, u64>,
    duration: BTreeMap<String, Histogram>,
    ttft: BTreeMap<String, Histogram>,
}

/// Call metrics of the whole process.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// What one finished call contributes.
pub struct CallOutcome<'a> {
    pub api: &'a str,
    pub model: &'a str,
    pub status: &'a str,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cached_tokens: u32,
    pub seconds: f64,
    pub ttft_seconds: Option<f64>,
}

/// Appends the guardrail counters (evaluations and text units by guardrail,
/// source and action).
pub fn render_guardrails(
    out: &mut String,
    rows: &[(
        String,
        &'static str,
        &'static str,
        basalt_guardrails::Counter,
    )],
) {
    for (name, help, pick) in [
        (
            "basalt_guardrail_evaluations_total",
            "Guardrail evaluations by guardrail, source and action.",
            (|c: &basalt_guardrails::Counter| c.evaluations)
                as fn(&basalt_guardrails::Counter) -> u64,
        ),
        (
            "basalt_guardrail_text_units_total",
            "Text units (1,000 characters per policy) the guardrails processed.",
            |c: &basalt_guardrails::Counter| c.text_units,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (g, source, action, c) in rows {
            let _ = writeln!(
                out,
                "{name}{{guardrail=\"{}\",source=\"{source}\",action=\"{action}\"}} {}",
                escape(g),
                pick(c)
            );
        }
    }
}

/// Appends the embedding models' counters, one family each, by model.
pub fn render_embedders(out: &mut String, rows: &[(&str, &EmbedStats)]) {
    for (name, help, pick) in [
        (
            "basalt_embedding_inputs_total",
            "Inputs (texts) an embedding model embedded.",
            (|s: &EmbedStats| &s.inputs) as fn(&EmbedStats) -> &AtomicU64,
        ),
        (
            "basalt_embedding_tokens_total",
            "Tokens an embedding model embedded.",
            |s: &EmbedStats| &s.tokens,
        ),
        (
            "basalt_embedding_passes_total",
            "Forward passes an embedding model ran.",
            |s: &EmbedStats| &s.batches,
        ),
        (
            "basalt_embedding_express_requests_total",
            "Short requests embedded on the express lane, beside longer work.",
            |s: &EmbedStats| &s.express,
        ),
        (
            "basalt_embedding_kernel_passes_total",
            "Forward passes run by basalt's own encoder instead of llama.cpp (inputs of up to 256 tokens, on AVX-512 VNNI).",
            |s: &EmbedStats| &s.kernel_passes,
        ),
    ] {
        render_family(
            out,
            name,
            "counter",
            help,
            "model",
            rows.iter()
                .map(|(m, s)| (m, pick(s).load(Ordering::Relaxed))),
        );
    }
}

/// Appends one metric family of `kind` (`counter`, `gauge`) with a single
/// label: a sample per `(label value, sample)` row.
pub fn render_family<L: AsRef<str>, V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value, sample) in rows {
        let _ = writeln!(
            out,
            "{name}{{{label}=\"{}\"}} {sample}",
            escape(value.as_ref())
        );
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn observe(&self, o: &CallOutcome<'_>) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.requests
            .entry((o.api.to_string(), o.model.to_string(), o.status.to_string()))
            .or_default() += 1;
        *m.input_tokens.entry(o.model.to_string()).or_default() += u64::from(o.input_tokens);
        *m.output_tokens.entry(o.model.to_string()).or_default() += u64::from(o.output_tokens);
        *m.cached_tokens.entry(o.model.to_string()).or_default() += u64::from(o.cached_tokens);
        m.duration
            .entry(o.model.to_string())
            .or_default()
            .observe(o.seconds);
        if let Some(t) = o.ttft_seconds {
            m.ttft.entry(o.model.to_string()).or_default().observe(t);
        }
    }

    /// Prometheus text exposition format.
    ///
    /// (Guardrail counters are appended by [`render_guardrails`].)
    pub fn render<'a>(
        &self,
        engines: impl IntoIterator<Item = (&'a str, &'a EngineStats)>,
    ) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        let _ = writeln!(
            out,
            "# HELP basalt_requests_total Model calls by API, model and final status."
        );
        let _ = writeln!(out, "# TYPE basalt_requests_total counter");
        for ((api, model, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "basalt_requests_total{{api=\"{}\",model=\"{}\",status=\"{}\"}} {n}",
                escape(api),
                escape(model),
                escape(status)
            );
        }
        for (name, help, map) in [
            (
                "basalt_input_tokens_total",
                "Input (prompt) tokens.",
                &m.input_tokens,
            ),
            (
                "basalt_output_tokens_total",
                "Generated tokens.",
                &m.output_tokens,
            ),
            (
                "basalt_cached_input_tokens_total",
                "Input tokens served from the KV prefix cache.",
                &m.cached_tokens,
            ),
        ] {
            render_family(&mut out, name, "counter", help, "model", map);
        }
        for (name, help, map) in [
            (
                "basalt_request_duration_seconds",
                "Wall time of model calls.",
                &m.duration,
            ),
            (
                "basalt_time_to_first_token_seconds",
                "Time from request to first generated token.",
                &m.ttft,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (model, h) in map {
                let model = escape(model);
                for (le, c) in BUCKETS_SECONDS.iter().zip(h.counts) {
                    let _ = writeln!(out, "{name}_bucket{{model=\"{model}\",le=\"{le}\"}} {c}");
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{{model=\"{model}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "{name}_sum{{model=\"{model}\"}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{model=\"{model}\"}} {}", h.count);
            }
        }
        drop(m);
        let engines: Vec<_> = engines.into_iter().collect();
        type Read = fn(&EngineStats) -> i64;
        let gauges: [(&str, &str, &str, Read); 7] = [
            (
                "basalt_queue_depth",
                "gauge",
                "Requests waiting for a sequence slot.",
                |s| s.queue_depth.load(Ordering::Relaxed),
            ),
            (
                "basalt_active_sequences",
                "gauge",
                "Sequences being generated.",
                |s| s.active_sequences.load(Ordering::Relaxed),
            ),
            (
                "basalt_prefix_cache_hits_total",
                "counter",
                "Requests that reused a cached KV prefix.",
                |s| s.prefix_cache_hits.load(Ordering::Relaxed) as i64,
            ),
            (
                "basalt_prefix_cache_hit_tokens_total",
                "counter",
                "Prompt tokens reused from the KV prefix cache.",
                |s| s.prefix_cache_hit_tokens.load(Ordering::Relaxed) as i64,
            ),
            (
                "basalt_prompt_tokens_evaluated_total",
                "counter",
                "Prompt tokens computed by the engine.",
                |s| s.prompt_tokens_evaluated.load(Ordering::Relaxed) as i64,
            ),
            (
                "basalt_decode_steps_total",
                "counter",
                "Batched decode steps run by the engine.",
                |s| s.decode_steps.load(Ordering::Relaxed) as i64,
            ),
            (
                "basalt_output_kernel_steps_total",
                "counter",
                "Decode steps whose logits came from basalt's output kernel instead of llama.cpp's.",
                |s| s.output_kernel_steps.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, kind, help, read) in gauges {
            let rows = engines.iter().map(|(model, stats)| (*model, read(stats)));
            render_family(&mut out, name, kind, help, "model", rows);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.observe(&CallOutcome {
            api: "Converse",
            model: "m",
            status: "ok",
            input_tokens: 7,
            output_tokens: 3,
            cached_tokens: 2,
            seconds: 0.2,
            ttft_seconds: Some(0.02),
        });
        let stats = EngineStats::default();
        stats.active_sequences.store(2, Ordering::Relaxed);
        let text = m.render([("m", &stats)]);
        assert!(
            text.contains("basalt_requests_total{api=\"Converse\",model=\"m\",status=\"ok\"} 1")
        );
        assert!(text.contains("basalt_input_tokens_total{model=\"m\"} 7"));
        assert!(text.contains("basalt_request_duration_seconds_bucket{model=\"m\",le=\"0.25\"} 1"));
        assert!(text.contains("basalt_request_duration_seconds_bucket{model=\"m\",le=\"0.1\"} 0"));
        assert!(text.contains("basalt_time_to_first_token_seconds_count{model=\"m\"} 1"));
        assert!(text.contains("basalt_active_sequences{model=\"m\"} 2"));
    }
}
