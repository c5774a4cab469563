//! The verification link as a QR code drawn with filled rectangles: vector modules stay sharp at
//! any print resolution and need no image support in the PDF writer.

use qrcode::types::QrError;
use qrcode::{Color, EcLevel, QrCode};

use super::canvas::{Canvas, Ink};

/// Modules of light margin a scanner needs around the code (ISO/IEC 18004's quiet zone); the
/// layout keeps that space free of anything else.
pub(super) const QUIET_ZONE: usize = 4;

/// The QR code of `url`, as rows of modules from the top, `true` for dark.
pub(super) fn modules(url: &str) -> Result<Vec<Vec<bool>>, QrError> {
    // Level M (15 % of the code may be lost): a printed page gets folded, stamped and photocopied.
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)?;
    let width = code.width();
    Ok((0..width)
        .map(|y| (0..width).map(|x| code[(x, y)] == Color::Dark).collect())
        .collect())
}

/// Draws `modules` into the square of side `size` whose lower left corner is `(x, y)`, quiet zone
/// included. Each run of dark modules in a row is one rectangle, so a reader paints no seams
/// between neighbours and the file stays small.
pub(super) fn draw(canvas: &mut Canvas, modules: &[Vec<bool>], x: f32, y: f32, size: f32) {
    let unit = size / (modules.len() + 2 * QUIET_ZONE) as f32;
    let left = x + QUIET_ZONE as f32 * unit;
    let top = y + size - QUIET_ZONE as f32 * unit;
    for (row, cells) in modules.iter().enumerate() {
        let bottom = top - (row + 1) as f32 * unit;
        let mut column = 0;
        while column < cells.len() {
            if !cells[column] {
                column += 1;
                continue;
            }
            let start = column;
            while column < cells.len() && cells[column] {
                column += 1;
            }
            let run = (column - start) as f32;
            canvas.fill(
                left + start as f32 * unit,
                bottom,
                run * unit,
                unit,
                Ink::Black,
            );
        }
    }
}
