//! Small SVG charts written by curate (no scripts, no fonts to fetch): horizontal bar charts
//! and histograms with threshold lines, each with a title, axis labels and units.

use std::fmt::Write as _;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// Short human number: 1234567 -> 1.23M.
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One bar: label, value, and an optional second value drawn on top (e.g. out vs in).
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub inner: Option<f64>,
}

/// A horizontal bar chart.
pub fn bars(title: &str, unit: &str, data: &[Bar], legend: Option<(&str, &str)>) -> String {
    let row = 22.0;
    // Wide enough for the longest label (about 6.5 px per character at the label font size).
    let longest = data
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let label_w = (longest as f64 * 6.5 + 12.0).clamp(120.0, 380.0);
    let chart_w = 520.0;
    let h = 50.0 + row * data.len() as f64 + 34.0;
    let w = label_w + chart_w + 110.0;
    let max = data
        .iter()
        .map(|b| b.value.max(b.inner.unwrap_or(0.0)))
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="4" y="18" class="title">{}</text>"#,
        esc(title)
    );
    for (i, b) in data.iter().enumerate() {
        let y = 34.0 + row * i as f64;
        let bw = chart_w * b.value / max;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="lbl" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + 14.0,
            esc(&b.label)
        );
        let _ = write!(
            s,
            r#"<rect x="{label_w}" y="{}" width="{bw:.1}" height="{}" class="bar"><title>{}: {}</title></rect>"#,
            y + 3.0,
            row - 6.0,
            esc(&b.label),
            human(b.value)
        );
        if let Some(inner) = b.inner {
            let iw = chart_w * inner / max;
            let _ = write!(
                s,
                r#"<rect x="{label_w}" y="{}" width="{iw:.1}" height="{}" class="bar2"><title>{}: {}</title></rect>"#,
                y + 3.0,
                row - 6.0,
                esc(&b.label),
                human(inner)
            );
        }
        let shown = match b.inner {
            Some(i) => format!("{} / {}", human(i), human(b.value)),
            None => human(b.value),
        };
        let _ = write!(
            s,
            // One decimal, as the bar widths: a last-bit difference in a value (a time read
            // back from stats.json) must not change the page.
            r#"<text x="{:.1}" y="{}" class="val">{}</text>"#,
            label_w + bw.max(b.inner.map_or(0.0, |i| chart_w * i / max)) + 4.0,
            y + 14.0,
            esc(&shown)
        );
    }
    let ay = 34.0 + row * data.len() as f64 + 4.0;
    let _ = write!(
        s,
        r#"<line x1="{label_w}" y1="{ay}" x2="{}" y2="{ay}" class="axis"/>"#,
        label_w + chart_w
    );
    for k in 0..=4 {
        let x = label_w + chart_w * k as f64 / 4.0;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
            ay + 14.0,
            human(max * k as f64 / 4.0)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="axlbl" text-anchor="middle">{}</text>"#,
        label_w + chart_w / 2.0,
        ay + 28.0,
        esc(unit)
    );
    if let Some((a, b)) = legend {
        let lx = w - 230.0;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="6" width="10" height="10" class="bar"/><text x="{}" y="15" class="tick">{}</text><rect x="{}" y="6" width="10" height="10" class="bar2"/><text x="{}" y="15" class="tick">{}</text>"#,
            lx + 14.0,
            esc(a),
            lx + 110.0,
            lx + 124.0,
            esc(b),
        );
    }
    s.push_str("</svg>");
    s
}

/// A histogram: `counts[i]` documents with values in `[lo + i*width, lo + (i+1)*width)`,
/// optionally split into kept and dropped, with vertical lines at thresholds.
pub fn histogram(
    title: &str,
    xlabel: &str,
    lo: f64,
    width: f64,
    kept: &[u64],
    dropped: &[u64],
    thresholds: &[f64],
) -> String {
    let (w, h) = (560.0, 250.0);
    let (ml, mr, mt, mb) = (56.0, 16.0, 30.0, 48.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let n = kept.len().max(1);
    let tot: Vec<u64> = (0..n)
        .map(|i| kept.get(i).copied().unwrap_or(0) + dropped.get(i).copied().unwrap_or(0))
        .collect();
    let max = *tot.iter().max().unwrap_or(&1).max(&1) as f64;
    let hi = lo + width * n as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="4" y="18" class="title">{}</text>"#,
        esc(title)
    );
    let bw = pw / n as f64;
    for i in 0..n {
        let x = ml + bw * i as f64;
        let k = kept.get(i).copied().unwrap_or(0) as f64;
        let d = dropped.get(i).copied().unwrap_or(0) as f64;
        let hk = ph * k / max;
        let hd = ph * d / max;
        let range = format!(
            "{}..{}",
            human(lo + width * i as f64),
            human(lo + width * (i + 1) as f64)
        );
        if k > 0.0 {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{hk:.1}" class="bar"><title>{range}: {k} kept</title></rect>"#,
                mt + ph - hk,
                (bw - 1.0).max(0.5)
            );
        }
        if d > 0.0 {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{hd:.1}" class="bar3"><title>{range}: {d} dropped</title></rect>"#,
                mt + ph - hk - hd,
                (bw - 1.0).max(0.5)
            );
        }
    }
    let _ = write!(
        s,
        r#"<line x1="{ml}" y1="{}" x2="{}" y2="{}" class="axis"/>"#,
        mt + ph,
        ml + pw,
        mt + ph
    );
    let _ = write!(
        s,
        r#"<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{}" class="axis"/>"#,
        mt + ph
    );
    for k in 0..=4 {
        let x = ml + pw * k as f64 / 4.0;
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
            mt + ph + 14.0,
            human(lo + (hi - lo) * k as f64 / 4.0)
        );
        let y = mt + ph - ph * k as f64 / 4.0;
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            ml - 4.0,
            y + 4.0,
            human(max * k as f64 / 4.0)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="axlbl" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        h - 8.0,
        esc(xlabel)
    );
    let _ = write!(
        s,
        r#"<text x="12" y="{}" class="axlbl" transform="rotate(-90 12 {})" text-anchor="middle">documents</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0
    );
    for &t in thresholds {
        if hi > lo && t >= lo && t <= hi {
            let x = ml + pw * (t - lo) / (hi - lo);
            // Label on the side with room.
            let (lx, anchor) = if x > ml + pw * 0.7 {
                (x - 3.0, "end")
            } else {
                (x + 3.0, "start")
            };
            let _ = write!(
                s,
                r#"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{}" class="thr"/><text x="{lx:.1}" y="{}" class="thrl" text-anchor="{anchor}">threshold {}</text>"#,
                mt + ph,
                mt + 10.0,
                human(t)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The shared stylesheet of the charts and the page.
pub const CSS: &str = r#"
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d2330;background:#fff;max-width:1180px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px} .sub{color:#5b6475;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:6px 0} th,td{border:1px solid #d8dde6;padding:3px 8px;text-align:right}
th{background:#f2f4f8} td.l,th.l{text-align:left}
pre{background:#f6f8fa;border:1px solid #e1e5ec;padding:8px;font-size:12px;overflow:auto;max-height:360px;white-space:pre-wrap}
.grid{display:flex;flex-wrap:wrap;gap:10px} .card{border:1px solid #e1e5ec;border-radius:6px;padding:6px;background:#fff}
.ex{border-left:3px solid #c0392b;padding:4px 8px;margin:6px 0;background:#fdf6f5;font-size:12px}
.ex .u{color:#2c5aa0;word-break:break-all} .ex pre{max-height:120px;margin:4px 0;background:#fff}
.kpi{display:inline-block;margin:4px 18px 4px 0} .kpi b{font-size:20px;display:block}
svg .title{font-size:14px;font-weight:600;fill:#1d2330} svg .lbl{font-size:12px;fill:#1d2330}
svg .val,svg .tick{font-size:11px;fill:#5b6475} svg .axlbl{font-size:12px;fill:#1d2330}
svg .bar{fill:#4a78c2} svg .bar2{fill:#2e9e6b} svg .bar3{fill:#d9822b} svg .axis{stroke:#7a8394;stroke-width:1}
svg .thr{stroke:#c0392b;stroke-width:2;stroke-dasharray:5,3} svg .thrl{font-size:11px;fill:#c0392b}
"#;
