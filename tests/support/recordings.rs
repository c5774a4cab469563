//! Small recordings made by the tests themselves, one per container the server measures: silent
//! but well-formed, so the server's container readers see exactly what a recording app writes.

/// `seconds` of silence as 8 kHz mono 8-bit PCM in a RIFF/WAVE container.
pub fn wav(seconds: u32) -> Vec<u8> {
    let rate = 8000u32;
    let data = (rate * seconds) as usize;
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&(36 + data as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes()); // sample rate
    w.extend_from_slice(&rate.to_le_bytes()); // byte rate
    w.extend_from_slice(&1u16.to_le_bytes()); // block align
    w.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data as u32).to_le_bytes());
    w.resize(w.len() + data, 0x80);
    w
}

pub fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

/// A minimal video MP4: `ftyp`, then `moov` with a version-0 `mvhd` stating the duration.
pub fn mp4(timescale: u32, duration: u32) -> Vec<u8> {
    let mut mvhd = vec![0u8; 4 + 8]; // version, flags, creation and modification times
    mvhd.extend_from_slice(&timescale.to_be_bytes());
    mvhd.extend_from_slice(&duration.to_be_bytes());
    mvhd.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
    mvhd.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
    mvhd.extend_from_slice(&[0u8; 10 + 36 + 24]); // reserved, matrix, pre-defined
    mvhd.extend_from_slice(&2u32.to_be_bytes()); // next track id
    [
        mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41"),
        mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd)),
    ]
    .concat()
}

/// MPEG-1 Layer III frames at 32 kbit/s, 32 kHz, mono: 144 bytes and 1152 samples (36 ms) each.
/// A frame whose side information is all zeros carries no main data: valid silence.
pub fn mp3(frames: usize) -> Vec<u8> {
    // Sync, MPEG-1, Layer III, no CRC | bitrate index 1 (32k), 32 kHz, no padding | mono.
    let header = [0xFF, 0xFB, 0x18, 0xC0];
    let mut frame = header.to_vec();
    frame.resize(144, 0);
    frame.repeat(frames)
}

/// Ogg Opus: the identification and comment headers, then one page per second holding fifty 20 ms
/// packets, each page's granule position counting 48 kHz samples after a 312-sample pre-skip.
pub fn ogg_opus(seconds: u32) -> Vec<u8> {
    const PRE_SKIP: u64 = 312;
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&(PRE_SKIP as u16).to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family
    let mut tags = b"OpusTags".to_vec();
    let vendor = b"cim tests";
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes()); // no comments

    let mut out = ogg_page(0x02, 0, 0, &[&head]);
    out.extend(ogg_page(0, 0, 1, &[&tags]));
    // TOC 0xF8: configuration 31 (CELT, fullband, 20 ms), mono, one frame; then two bytes of frame.
    let packet: &[u8] = &[0xF8, 0xFF, 0xFE];
    for second in 1..=seconds {
        let flags = if second == seconds { 0x04 } else { 0 };
        let granule = PRE_SKIP + u64::from(second) * 48_000;
        out.extend(ogg_page(flags, granule, second + 1, &[packet; 50]));
    }
    out
}

/// One Ogg page (RFC 3533) holding whole packets of fewer than 255 bytes each.
fn ogg_page(flags: u8, granule: u64, sequence: u32, packets: &[&[u8]]) -> Vec<u8> {
    let mut page = b"OggS".to_vec();
    page.push(0); // version
    page.push(flags);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&0x00c1_5eedu32.to_le_bytes()); // stream serial number
    page.extend_from_slice(&sequence.to_le_bytes());
    page.extend_from_slice(&[0; 4]); // checksum, filled in below
    page.push(packets.len() as u8);
    page.extend(packets.iter().map(|p| p.len() as u8));
    for packet in packets {
        page.extend_from_slice(packet);
    }
    let crc = ogg_crc(&page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    page
}

/// The Ogg checksum: CRC-32 with polynomial 0x04C11DB7, not reflected, starting from zero.
fn ogg_crc(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |mut crc, byte| {
        crc ^= u32::from(*byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
        crc
    })
}
