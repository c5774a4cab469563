//! Drawing on one A4 page in millimetres from the bottom left corner (PDF's own origin), over
//! printpdf's operations: lines of text, filled and stroked rectangles, rules.

use printpdf::{
    Color, Line, LinePoint, Mm, Op, PaintMode, PdfFontHandle, PdfPage, Point, Pt, Rect, Rgb,
    TextItem,
};

use super::fonts::Face;

/// A4 portrait, in millimetres.
pub(super) const PAGE_WIDTH: f32 = 210.0;
pub(super) const PAGE_HEIGHT: f32 = 297.0;

/// Points (the unit of font sizes) to millimetres.
pub(super) fn pt_to_mm(pt: f32) -> f32 {
    pt * 25.4 / 72.0
}

pub(super) fn mm_to_pt(mm: f32) -> f32 {
    mm * 72.0 / 25.4
}

/// The page's colours.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ink {
    /// Headings, the student's name and the frame.
    Navy,
    /// The frame's inner line and the rules.
    Gold,
    /// Running text.
    Text,
    /// Secondary text: dates, the certificate id.
    Grey,
    /// The QR code's modules: pure black, for scanners.
    Black,
}

impl Ink {
    fn color(self) -> Color {
        let (r, g, b) = match self {
            Ink::Navy => (0.06, 0.17, 0.36),
            Ink::Gold => (0.70, 0.55, 0.20),
            Ink::Text => (0.13, 0.13, 0.13),
            Ink::Grey => (0.38, 0.38, 0.38),
            Ink::Black => (0.0, 0.0, 0.0),
        };
        Color::Rgb(Rgb::new(r, g, b, None))
    }
}

/// The operations of one page, in the order they are drawn.
#[derive(Debug, Default)]
pub(super) struct Canvas {
    ops: Vec<Op>,
}

impl Canvas {
    /// One line of text with its left end at `x` and its baseline at `y`. Each line is its own
    /// text object, so positions are absolute and a reader extracts the lines in drawing order.
    pub(super) fn text(&mut self, x: f32, y: f32, face: Face, size: f32, ink: Ink, text: &str) {
        self.ops.extend([
            Op::SetFillColor { col: ink.color() },
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::Builtin(face.builtin()),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point::new(Mm(x), Mm(y)),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_owned())],
            },
            Op::EndTextSection,
        ]);
    }

    /// One line of text centred on the page.
    pub(super) fn centred(&mut self, y: f32, face: Face, size: f32, ink: Ink, text: &str) {
        let width = pt_to_mm(face.width(text, size));
        self.text((PAGE_WIDTH - width) / 2.0, y, face, size, ink, text);
    }

    /// A filled rectangle, `(x, y)` its lower left corner.
    pub(super) fn fill(&mut self, x: f32, y: f32, width: f32, height: f32, ink: Ink) {
        let mut rect = Rect::from_xywh(
            Mm(x).into(),
            Mm(y).into(),
            Mm(width).into(),
            Mm(height).into(),
        );
        rect.mode = Some(PaintMode::Fill);
        self.ops.extend([
            Op::SetFillColor { col: ink.color() },
            Op::DrawRectangle { rectangle: rect },
        ]);
    }

    /// A rectangle's outline `inset` millimetres inside the page's edge.
    pub(super) fn frame(&mut self, inset: f32, thickness: f32, ink: Ink) {
        let corners = [
            (inset, inset),
            (PAGE_WIDTH - inset, inset),
            (PAGE_WIDTH - inset, PAGE_HEIGHT - inset),
            (inset, PAGE_HEIGHT - inset),
        ];
        self.stroke(&corners, true, thickness, ink);
    }

    /// A horizontal rule from `x1` to `x2` at height `y`.
    pub(super) fn rule(&mut self, x1: f32, x2: f32, y: f32, thickness: f32, ink: Ink) {
        self.stroke(&[(x1, y), (x2, y)], false, thickness, ink);
    }

    fn stroke(&mut self, points: &[(f32, f32)], closed: bool, thickness: f32, ink: Ink) {
        let points = points
            .iter()
            .map(|&(x, y)| LinePoint {
                p: Point::new(Mm(x), Mm(y)),
                bezier: false,
            })
            .collect();
        self.ops.extend([
            Op::SetOutlineColor { col: ink.color() },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: Line {
                    points,
                    is_closed: closed,
                },
            },
        ]);
    }

    pub(super) fn into_page(self) -> PdfPage {
        PdfPage::new(Mm(PAGE_WIDTH), Mm(PAGE_HEIGHT), self.ops)
    }
}
