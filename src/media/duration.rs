//! The duration of an uploaded recording, measured by the server.
//!
//! Files are read with `symphonia`'s container readers (MP4/M4A, MP3, WAV, Ogg, WebM/Matroska)
//! without decoding: the end of the last packet of the first timed track (so a header that claims
//! more than the file holds is not believed), or else the frame count and time base a track states
//! (the Matroska reader gives every track, video included, the Segment's duration). For MP4 the
//! movie header (`mvhd`) is read first: it is the duration of the whole presentation, video tracks
//! included, which symphonia's MP4 reader does not expose; it is taken as the file states it. What
//! cannot be measured is reported as [`MeasuredDuration::Unmeasured`]; the student's declared
//! duration is then kept and flagged for the coordinator (domain rule).

use super::sniff::Kind;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

#[derive(Debug, Clone, PartialEq)]
pub enum MeasuredDuration {
    Measured { seconds: f64 },
    Unmeasured { reason: String },
}

impl MeasuredDuration {
    fn unmeasured(reason: impl Into<String>) -> Self {
        MeasuredDuration::Unmeasured {
            reason: reason.into(),
        }
    }

    /// Milliseconds, when measured.
    pub fn millis(&self) -> Option<i64> {
        match self {
            MeasuredDuration::Measured { seconds } => Some((seconds * 1000.0).round() as i64),
            MeasuredDuration::Unmeasured { .. } => None,
        }
    }
}

/// Measures the file at `path`, whose kind was sniffed. Blocking: call it from `spawn_blocking`.
pub fn measure(path: &Path, kind: Kind) -> MeasuredDuration {
    if !kind.is_timed() {
        return MeasuredDuration::unmeasured("not audio or video");
    }
    if let Kind::Mp4 { .. } = kind {
        let from_mvhd = std::fs::File::open(path)
            .ok()
            .and_then(|mut f| mp4_movie_duration(&mut f).ok().flatten());
        if let Some(seconds) = from_mvhd {
            return MeasuredDuration::Measured { seconds };
        }
    }
    match with_symphonia(path, kind) {
        Ok(Some(seconds)) => MeasuredDuration::Measured { seconds },
        Ok(None) => MeasuredDuration::unmeasured("the container does not state a duration"),
        Err(e) => MeasuredDuration::unmeasured(format!("the container could not be read: {e}")),
    }
}

/// The duration as symphonia reads it: the end of the last packet of the first timed track, which
/// reflects the bytes actually present (a header claiming more than the file holds, as a truncated or
/// doctored WAV can, is not believed); failing that, the longest duration a track states.
fn with_symphonia(path: &Path, kind: Kind) -> Result<Option<f64>, SymphoniaError> {
    let file = std::fs::File::open(path)?;
    let source = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(kind.extension());
    let probed = symphonia::default::get_probe().format(
        &hint,
        source,
        &FormatOptions::default(),
        &MetadataOptions::default(),
    )?;
    let mut format = probed.format;
    let mut stated: Option<f64> = None;
    for track in format.tracks() {
        let params = &track.codec_params;
        let seconds = match (params.n_frames, params.time_base, params.sample_rate) {
            (Some(n), Some(tb), _) => {
                let t = tb.calc_time(n);
                Some(t.seconds as f64 + t.frac)
            }
            (Some(n), None, Some(rate)) if rate > 0 => Some(n as f64 / f64::from(rate)),
            _ => None,
        };
        if let Some(s) = seconds {
            stated = Some(stated.map_or(s, |l: f64| l.max(s)));
        }
    }
    let stated = stated.filter(|s| *s > 0.0);
    let Some((track_id, time_base)) = format
        .tracks()
        .iter()
        .find_map(|t| t.codec_params.time_base.map(|tb| (t.id, tb)))
    else {
        return Ok(stated);
    };
    let mut end: Option<u64> = None;
    loop {
        match format.next_packet() {
            Ok(packet) if packet.track_id() == track_id => {
                let packet_end = packet.ts().saturating_add(packet.dur());
                end = Some(end.map_or(packet_end, |e| e.max(packet_end)));
            }
            Ok(_) => {}
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            // A damaged tail: what was read so far, or what the container states.
            Err(_) if end.is_some() => break,
            Err(_) => return Ok(stated),
        }
    }
    let counted = end.map(|end| {
        let t = time_base.calc_time(end);
        t.seconds as f64 + t.frac
    });
    Ok(counted.filter(|s| *s > 0.0).or(stated))
}

/// The duration in the movie header (`moov/mvhd`) of an ISO base media file, in seconds; `None`
/// when there is no `mvhd` or it states no duration.
pub fn mp4_movie_duration<R: Read + Seek>(file: &mut R) -> std::io::Result<Option<f64>> {
    let len = file.seek(SeekFrom::End(0))?;
    let Some((moov_start, moov_end)) = find_box(file, 0, len, b"moov")? else {
        return Ok(None);
    };
    let Some((mvhd_start, mvhd_end)) = find_box(file, moov_start, moov_end, b"mvhd")? else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(mvhd_start))?;
    let mut version = [0u8; 4];
    file.read_exact(&mut version)?;
    let (timescale, duration) = if version[0] == 1 {
        if mvhd_end - mvhd_start < 32 {
            return Ok(None);
        }
        let mut b = [0u8; 28];
        file.read_exact(&mut b)?;
        let timescale = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        let duration = u64::from_be_bytes([b[20], b[21], b[22], b[23], b[24], b[25], b[26], b[27]]);
        (timescale, (duration != u64::MAX).then_some(duration))
    } else {
        if mvhd_end - mvhd_start < 20 {
            return Ok(None);
        }
        let mut b = [0u8; 16];
        file.read_exact(&mut b)?;
        let timescale = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        let duration = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
        (
            timescale,
            (duration != u32::MAX).then_some(u64::from(duration)),
        )
    };
    Ok(match duration {
        Some(d) if timescale > 0 && d > 0 => Some(d as f64 / f64::from(timescale)),
        _ => None,
    })
}

/// The payload range (after the header) of the first box of type `kind` between `start` and `end`.
fn find_box<R: Read + Seek>(
    file: &mut R,
    start: u64,
    end: u64,
    kind: &[u8; 4],
) -> std::io::Result<Option<(u64, u64)>> {
    let mut at = start;
    while at + 8 <= end {
        file.seek(SeekFrom::Start(at))?;
        let mut header = [0u8; 8];
        file.read_exact(&mut header)?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let (size, header_len) = match size32 {
            0 => (end - at, 8),
            1 => {
                let mut large = [0u8; 8];
                file.read_exact(&mut large)?;
                (u64::from_be_bytes(large), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header_len || at + size > end {
            return Ok(None);
        }
        if &header[4..8] == kind {
            return Ok(Some((at + header_len, at + size)));
        }
        at += size;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut p = vec![0u8; 4 + 8];
        p.extend_from_slice(&timescale.to_be_bytes());
        p.extend_from_slice(&duration.to_be_bytes());
        p.extend_from_slice(&[0u8; 80]);
        mp4_box(b"mvhd", &p)
    }

    #[test]
    fn reads_the_movie_header_duration() {
        let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
        file.extend(mp4_box(b"free", &[0; 10]));
        file.extend(mp4_box(b"moov", &mvhd_v0(1000, 151_500)));
        assert_eq!(
            mp4_movie_duration(&mut Cursor::new(file)).unwrap(),
            Some(151.5)
        );
    }

    #[test]
    fn reads_a_version_1_header_and_refuses_unknown_durations() {
        let mut p = vec![1u8, 0, 0, 0];
        p.extend_from_slice(&[0u8; 16]);
        p.extend_from_slice(&600u32.to_be_bytes());
        p.extend_from_slice(&(600u64 * 320).to_be_bytes());
        let file = [
            mp4_box(b"ftyp", b"isom"),
            mp4_box(b"moov", &mp4_box(b"mvhd", &p)),
        ]
        .concat();
        assert_eq!(
            mp4_movie_duration(&mut Cursor::new(file)).unwrap(),
            Some(320.0)
        );
        let unknown = [
            mp4_box(b"ftyp", b"isom"),
            mp4_box(b"moov", &mvhd_v0(1000, u32::MAX)),
        ]
        .concat();
        assert_eq!(mp4_movie_duration(&mut Cursor::new(unknown)).unwrap(), None);
        let no_moov = mp4_box(b"ftyp", b"isom");
        assert_eq!(mp4_movie_duration(&mut Cursor::new(no_moov)).unwrap(), None);
        // A box claiming more than the file holds ends the search.
        let mut broken = mp4_box(b"ftyp", b"isom");
        broken.extend_from_slice(&[0, 0, 0x10, 0, b'm', b'o', b'o', b'v']);
        assert_eq!(mp4_movie_duration(&mut Cursor::new(broken)).unwrap(), None);
    }

    #[test]
    fn measures_a_wav_file_with_symphonia() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let rate = 8000u32;
        let samples = vec![0x80u8; rate as usize * 3];
        let mut wav = b"RIFF".to_vec();
        wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&rate.to_le_bytes());
        wav.extend_from_slice(&rate.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&8u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
        wav.extend_from_slice(&samples);
        std::fs::write(&path, wav).unwrap();
        assert_eq!(
            measure(&path, Kind::Wav),
            MeasuredDuration::Measured { seconds: 3.0 }
        );
        // A header that claims 150 s over 3 s of samples: the samples present are what counts.
        let mut doctored = std::fs::read(&path).unwrap();
        doctored[4..8].copy_from_slice(&(36 + rate * 150).to_le_bytes());
        doctored[40..44].copy_from_slice(&(rate * 150).to_le_bytes());
        std::fs::write(&path, &doctored).unwrap();
        // (to within the last packet, whose nominal length symphonia reports even when cut short).
        match measure(&path, Kind::Wav) {
            MeasuredDuration::Measured { seconds } => {
                assert!((seconds - 3.0).abs() < 0.05, "{seconds}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, b"RIFF\0\0\0\0WAVEjunk").unwrap();
        assert!(matches!(
            measure(&path, Kind::Wav),
            MeasuredDuration::Unmeasured { .. }
        ));
        assert!(matches!(
            measure(&path, Kind::Pdf),
            MeasuredDuration::Unmeasured { .. }
        ));
    }

    /// An EBML element with an 8-byte size.
    fn el(id: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut e = id.to_vec();
        e.push(0x01);
        e.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
        e.extend_from_slice(payload);
        e
    }

    #[test]
    fn measures_a_video_only_webm() {
        let header = el(
            &[0x1A, 0x45, 0xDF, 0xA3],
            &[
                el(&[0x42, 0x86], &[1]),
                el(&[0x42, 0xF7], &[1]),
                el(&[0x42, 0xF2], &[4]),
                el(&[0x42, 0xF3], &[8]),
                el(&[0x42, 0x82], b"webm"),
                el(&[0x42, 0x87], &[2]),
                el(&[0x42, 0x85], &[2]),
            ]
            .concat(),
        );
        let info = el(
            &[0x15, 0x49, 0xA9, 0x66],
            &[
                el(&[0x2A, 0xD7, 0xB1], &1_000_000u32.to_be_bytes()),
                el(&[0x44, 0x89], &320_000f64.to_be_bytes()),
                el(&[0x4D, 0x80], b"cim"),
                el(&[0x57, 0x41], b"cim"),
            ]
            .concat(),
        );
        let video = el(&[0xE0], &[el(&[0xB0], &[16]), el(&[0xBA], &[16])].concat());
        let entry = el(
            &[0xAE],
            &[
                el(&[0xD7], &[1]),
                el(&[0x73, 0xC5], &[1]),
                el(&[0x83], &[1]),
                el(&[0x86], b"V_VP8"),
                video,
            ]
            .concat(),
        );
        let tracks = el(&[0x16, 0x54, 0xAE, 0x6B], &entry);
        let cluster = |at_ms: u32| {
            el(
                &[0x1F, 0x43, 0xB6, 0x75],
                &[
                    el(&[0xE7], &at_ms.to_be_bytes()),
                    el(&[0xA3], &[0x81, 0, 0, 0x80, 0, 0, 0, 0]),
                ]
                .concat(),
            )
        };
        let segment = el(
            &[0x18, 0x53, 0x80, 0x67],
            &[info, tracks, cluster(0), cluster(319_960)].concat(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.webm");
        std::fs::write(&path, [header, segment].concat()).unwrap();
        // The last frame starts 40 ms before the Segment's stated end.
        match measure(&path, Kind::Matroska { webm: true }) {
            MeasuredDuration::Measured { seconds } => {
                assert!((seconds - 320.0).abs() < 0.1, "{seconds}")
            }
            other => panic!("{other:?}"),
        }
    }
}
