//! A minimal SVG line chart (no plotting dependency): axes with ticks, one polyline per
//! series, a legend.

use std::fmt::Write;

/// One line of the chart.
pub struct Series {
	/// Legend text.
	pub label: String,
	/// CSS colour.
	pub colour: &'static str,
	/// Points `(x, y)`.
	pub points: Vec<(f64, f64)>,
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
	let mut s = String::new();
	let _ = writeln!(
		s,
		r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
	);
	let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
	let _ = writeln!(
		s,
		r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>"#,
		w / 2.0
	);
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
	for i in 0..=5 {
		let x = x_min + (x_max - x_min) * f64::from(i) / 5.0;
		let _ = writeln!(
			s,
			r#"<text x="{:.1}" y="{}" text-anchor="middle">{x:.0}</text>"#,
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
		let _ = writeln!(
			s,
			r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
			line.colour,
			points.join(" ")
		);
		let ly = h - bottom - 20.0 - 18.0 * i as f64;
		let _ = writeln!(
			s,
			r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
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
