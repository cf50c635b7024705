//! Minimal SVG charts (no plotting dependency): a line chart (axes with ticks, one
//! polyline per series, a legend) and a bar chart (one labelled bar per item, negative
//! values below the zero line). Used by `blade-trainer watch` reports and `blade-bench`.

use std::fmt::Write;

/// One line of the chart.
pub struct Series {
	/// Legend text.
	pub label: String,
	/// CSS colour.
	pub colour: &'static str,
	/// Points `(x, y)`.
	pub points: Vec<(f64, f64)>,
	/// Draw dashed (a reference beside the measured lines).
	pub dashed: bool,
}

/// An SVG document with `series` on `[x_min, x_max] x [y_min, y_max]`.
pub fn line_chart(
	title: &str,
	x_label: &str,
	y_label: &str,
	(x_min, x_max): (f64, f64),
	(y_min, y_max): (f64, f64),
	series: &[Series],
) -> String {
	let (w, h, left, right, top, bottom) = (760.0, 460.0, 70.0, 20.0, 40.0, 60.0);
	let px = |x: f64| left + (x - x_min) / (x_max - x_min).max(1e-12) * (w - left - right);
	let py = |y: f64| h - bottom - (y - y_min) / (y_max - y_min).max(1e-12) * (h - top - bottom);
	let mut s = open(w, h, 12, title);
	for i in 0..=5 {
		let y = y_min + (y_max - y_min) * f64::from(i) / 5.0;
		let _ = writeln!(
			s,
			r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{y:.2}</text>"##,
			w - right,
			py(y),
			py(y),
			left - 6.0,
			py(y) + 4.0
		);
	}
	// Whole-number ranges of at most 10 (rounds, say) get one tick per number.
	let whole = x_min.fract() == 0.0 && x_max.fract() == 0.0 && x_max - x_min <= 10.0;
	let ticks: Vec<f64> = if whole && x_max > x_min {
		(0..=(x_max - x_min) as u32)
			.map(|i| x_min + f64::from(i))
			.collect()
	} else {
		(0..=5)
			.map(|i| x_min + (x_max - x_min) * f64::from(i) / 5.0)
			.collect()
	};
	let decimals = if whole || x_max - x_min >= 10.0 { 0 } else { 2 };
	for x in ticks {
		let _ = writeln!(
			s,
			r#"<text x="{:.1}" y="{}" text-anchor="middle">{x:.decimals$}</text>"#,
			px(x),
			h - bottom + 18.0
		);
	}
	let _ = writeln!(
		s,
		r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{}" stroke="black"/><line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="black"/>"#,
		h - bottom,
		w - right,
		h - bottom,
		h - bottom
	);
	let _ = writeln!(
		s,
		r#"<text x="{}" y="{}" text-anchor="middle">{x_label}</text>"#,
		(left + w - right) / 2.0,
		h - 15.0
	);
	let _ = writeln!(
		s,
		r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{y_label}</text>"#,
		(top + h - bottom) / 2.0,
		(top + h - bottom) / 2.0
	);
	for (i, line) in series.iter().enumerate() {
		let points: Vec<String> = line
			.points
			.iter()
			.map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
			.collect();
		let dash = if line.dashed {
			r#" stroke-dasharray="8 5""#
		} else {
			""
		};
		let _ = writeln!(
			s,
			r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
			line.colour,
			points.join(" ")
		);
		for (x, y) in &line.points {
			let _ = writeln!(
				s,
				r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
				px(*x),
				py(*y),
				line.colour
			);
		}
		let ly = h - bottom - 20.0 - 18.0 * i as f64;
		let _ = writeln!(
			s,
			r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"{dash}/><text x="{}" y="{}">{}</text>"#,
			w - right - 300.0,
			w - right - 276.0,
			line.colour,
			w - right - 270.0,
			ly + 4.0,
			line.label
		);
	}
	s.push_str("</svg>\n");
	s
}

/// One bar of a [`bar_chart`].
pub struct Bar {
	/// Label under the bar.
	pub label: String,
	/// Height (may be negative).
	pub value: f64,
	/// CSS colour.
	pub colour: &'static str,
}

/// The start of an SVG document `w` x `h` on white, with `title` centred on top.
fn open(w: f64, h: f64, font_size: u32, title: &str) -> String {
	let mut s = String::new();
	let _ = writeln!(
		s,
		r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="{font_size}">"#
	);
	let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
	let _ = writeln!(
		s,
		r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
		w / 2.0,
		escape(title)
	);
	s
}

fn escape(text: &str) -> String {
	text.replace('&', "&amp;")
		.replace('<', "&lt;")
		.replace('>', "&gt;")
}

/// An SVG bar chart of `bars`, zero line included; `legend` pairs a colour with its meaning.
pub fn bar_chart(title: &str, y_label: &str, bars: &[Bar], legend: &[(&str, &str)]) -> String {
	let (w, h, left, right, top, bottom) = (760.0, 420.0, 70.0, 20.0, 40.0, 70.0);
	let max = bars.iter().map(|b| b.value).fold(0.0f64, f64::max);
	let min = bars.iter().map(|b| b.value).fold(0.0f64, f64::min);
	let span = (max - min).max(1e-9);
	let py = |y: f64| top + (max - y) / span * (h - top - bottom);
	let slot = (w - left - right) / bars.len().max(1) as f64;
	let mut s = open(w, h, 11, title);
	for i in 0..=4 {
		let y = min + span * f64::from(i) / 4.0;
		let _ = writeln!(
			s,
			r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{y:.2}</text>"##,
			w - right,
			py(y),
			py(y),
			left - 6.0,
			py(y) + 4.0
		);
	}
	for (i, bar) in bars.iter().enumerate() {
		let x = left + slot * i as f64 + slot * 0.15;
		let (y0, y1) = (py(bar.value.max(0.0)), py(bar.value.min(0.0)));
		let _ = writeln!(
			s,
			r#"<rect x="{x:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {:.3}</title></rect>"#,
			slot * 0.7,
			(y1 - y0).max(0.5),
			bar.colour,
			escape(&bar.label),
			bar.value
		);
		let _ = writeln!(
			s,
			r#"<text x="{:.1}" y="{}" text-anchor="end" transform="rotate(-45 {:.1} {})">{}</text>"#,
			x + slot * 0.35,
			h - bottom + 14.0,
			x + slot * 0.35,
			h - bottom + 14.0,
			escape(&bar.label)
		);
	}
	let _ = writeln!(
		s,
		r#"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="black"/>"#,
		w - right,
		py(0.0),
		py(0.0)
	);
	let _ = writeln!(
		s,
		r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
		(top + h - bottom) / 2.0,
		(top + h - bottom) / 2.0,
		escape(y_label)
	);
	for (i, (colour, meaning)) in legend.iter().enumerate() {
		let x = left + 10.0 + 130.0 * i as f64;
		let _ = writeln!(
			s,
			r#"<rect x="{x}" y="30" width="12" height="12" fill="{colour}"/><text x="{}" y="40">{}</text>"#,
			x + 16.0,
			escape(meaning)
		);
	}
	s.push_str("</svg>\n");
	s
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn charts_are_well_formed_svg_with_every_item() {
		let bars = [
			Bar {
				label: "a<b".into(),
				value: 2.0,
				colour: "green",
			},
			Bar {
				label: "c".into(),
				value: -1.5,
				colour: "red",
			},
		];
		let svg = bar_chart(
			"pay",
			"BLADE",
			&bars,
			&[("green", "honest"), ("red", "lazy")],
		);
		assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
		assert_eq!(
			svg.matches("<rect x=").count(),
			2 + 2,
			"two bars, two legend keys"
		);
		assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
		let line = line_chart(
			"accuracy",
			"round",
			"%",
			(1.0, 3.0),
			(0.0, 100.0),
			&[Series {
				label: "chain".into(),
				colour: "blue",
				points: vec![(1.0, 60.0), (3.0, 76.0)],
				dashed: true,
			}],
		);
		assert_eq!(line.matches("<polyline").count(), 1);
		assert_eq!(line.matches("<circle").count(), 2);
		assert!(line.contains("stroke-dasharray"));
		// Rounds 1..3: one tick per round, no repeated labels.
		for round in ["1", "2", "3"] {
			assert_eq!(
				line.matches(&format!(">{round}</text>")).count(),
				1,
				"{round}"
			);
		}
	}
}
