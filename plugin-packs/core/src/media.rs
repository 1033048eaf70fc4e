//! Synthetic media for multimodal inputs: real JPEG and PNG images and WAV clips, as data
//! URLs.
//!
//! PNG and WAV are written by hand (a stored-block zlib stream for PNG, PCM for WAV): a
//! few dozen lines instead of an image or audio crate in every binary. JPEG needs a DCT
//! and Huffman coding, so it comes from `jpeg-encoder` (pure Rust, no dependencies).
//! Servers decode them like any upload, so payload sizes and decode costs are realistic.

pub use aiperf_runtime::limits::MAX_IMAGE_SIDE;
use rand::rngs::StdRng;
use rand::Rng;

/// Longest synthetic clip, in seconds.
pub const MAX_AUDIO_SECONDS: f64 = 600.0;

/// `data:<mime>;base64,<bytes>`.
pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    let mut url = String::with_capacity(mime.len() + 13 + bytes.len().div_ceil(3) * 4);
    url.push_str("data:");
    url.push_str(mime);
    url.push_str(";base64,");
    base64_into(bytes, &mut url);
    url
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    base64_into(bytes, &mut out);
    out
}

fn base64_into(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if chunk.len() > 1 { sextet(n, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n, 0) } else { '=' });
    }
}

/// An RGB PNG of random pixels (noise does not compress, like a photo's detail).
pub fn png(width: u32, height: u32, rng: &mut StdRng) -> Vec<u8> {
    let width = width.clamp(1, MAX_IMAGE_SIDE);
    let height = height.clamp(1, MAX_IMAGE_SIDE);
    let row = 1 + 3 * width as usize;
    let mut raw = vec![0u8; row * height as usize];
    for line in raw.chunks_mut(row) {
        // Filter byte 0 (none), then the pixels.
        rng.fill(&mut line[1..]);
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8-bit depth, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A JPEG of random pixels, encoded as AIPerf encodes its images: quality 85, no chroma
/// subsampling (4:4:4).
pub fn jpeg(width: u32, height: u32, rng: &mut StdRng) -> Result<Vec<u8>, String> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    // MAX_IMAGE_SIDE is far below u16::MAX, JPEG's limit.
    let side = |v: u32| v.clamp(1, MAX_IMAGE_SIDE) as u16;
    let (width, height) = (side(width), side(height));
    let mut pixels = vec![0u8; 3 * usize::from(width) * usize::from(height)];
    rng.fill(&mut pixels[..]);
    let mut out = Vec::with_capacity(pixels.len() / 2);
    let mut encoder = Encoder::new(&mut out, 85);
    encoder.set_sampling_factor(SamplingFactor::F_1_1);
    encoder
        .encode(&pixels, width, height, ColorType::Rgb)
        .map_err(|e| format!("synthetic JPEG {width}x{height}: {e}"))?;
    Ok(out)
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // Chunks of synthetic images are far below 2^31 bytes (MAX_IMAGE_SIDE bounds them).
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 65_535;
    let mut out = Vec::with_capacity(data.len() + data.len() / BLOCK * 5 + 16);
    // CM 8 (deflate), 32 KiB window, no dictionary; 0x7801 is a multiple of 31.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = data.chunks(BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before the modulo overflows u32.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

/// A 16-bit mono PCM WAV clip: a tone with a little noise.
pub fn wav(seconds: f64, sample_rate_hz: u32, rng: &mut StdRng) -> Vec<u8> {
    let seconds = if seconds.is_finite() {
        seconds.clamp(0.0, MAX_AUDIO_SECONDS)
    } else {
        0.0
    };
    let rate = sample_rate_hz.clamp(1_000, 192_000);
    let samples = (seconds * f64::from(rate)).round().max(1.0) as usize;
    let data_len = (samples * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    // PCM, one channel, the rate, byte rate, block align 2, 16 bits per sample.
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    let step = 2.0 * std::f64::consts::PI * 440.0 / f64::from(rate);
    for i in 0..samples {
        let tone = (step * i as f64).sin() * 8_000.0;
        let noise: f64 = rng.random_range(-500.0..500.0);
        out.extend_from_slice(&((tone + noise) as i16).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(data_url("image/png", b"foo"), "data:image/png;base64,Zm9v");
    }

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn png_is_well_formed() {
        let mut rng = StdRng::seed_from_u64(1);
        let image = png(3, 2, &mut rng);
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&image[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(image[16..20].try_into().unwrap()), 3);
        assert_eq!(u32::from_be_bytes(image[20..24].try_into().unwrap()), 2);
        // IDAT: zlib header, one final stored block of 2 rows * (1 + 3*3) bytes.
        let idat = &image[33..];
        assert_eq!(&idat[4..8], b"IDAT");
        assert_eq!(&idat[8..11], &[0x78, 0x01, 1]);
        assert_eq!(u16::from_le_bytes([idat[11], idat[12]]), 20);
        assert!(image.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
        // Sides are clamped, never zero.
        let tiny = png(0, 0, &mut rng);
        assert_eq!(u32::from_be_bytes(tiny[16..20].try_into().unwrap()), 1);
    }

    /// The frame header AIPerf's images have: baseline, 8-bit, the asked size, three
    /// components none of them subsampled; and the quality-85 luma table.
    #[test]
    fn jpeg_is_baseline_444_at_quality_85() {
        let mut rng = StdRng::seed_from_u64(1);
        let image = jpeg(40, 24, &mut rng).expect("encodes");
        assert_eq!(&image[..2], [0xff, 0xd8], "starts with SOI");
        assert_eq!(&image[image.len() - 2..], [0xff, 0xd9], "ends with EOI");
        let sof = image
            .windows(2)
            .position(|w| w == [0xff, 0xc0])
            .expect("a baseline frame header");
        let h = &image[sof + 2..];
        // Length 17, precision 8, height 24, width 40, 3 components.
        assert_eq!(&h[..8], [0, 17, 8, 0, 24, 0, 40, 3]);
        for c in 0..3 {
            assert_eq!(h[8 + 3 * c + 1], 0x11, "component {c} sampled 1x1");
        }
        // The IJG luma table scaled to quality 85 starts 5, 3, 4 (zig-zag order).
        let dqt = image
            .windows(2)
            .position(|w| w == [0xff, 0xdb])
            .expect("a quantization table");
        assert_eq!(&image[dqt + 5..dqt + 8], [5, 3, 4]);
        // Noise does not compress: about as many bytes as pixels at least.
        assert!(image.len() > 40 * 24, "{} bytes", image.len());
    }

    #[test]
    fn zlib_splits_large_data_into_blocks() {
        let data = vec![7u8; 70_000];
        let z = zlib_stored(&data);
        assert_eq!(z[2], 0, "first block is not final");
        let second = 2 + 5 + 65_535;
        assert_eq!(z[second], 1, "second block is final");
        assert_eq!(z.len(), 2 + 5 * 2 + 70_000 + 4);
    }

    #[test]
    fn wav_header_and_length() {
        let mut rng = StdRng::seed_from_u64(1);
        let clip = wav(0.5, 16_000, &mut rng);
        assert_eq!(&clip[..4], b"RIFF");
        assert_eq!(&clip[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes(clip[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u32::from_le_bytes(clip[40..44].try_into().unwrap()), 16_000);
        assert_eq!(clip.len(), 44 + 16_000);
        assert_eq!(wav(f64::NAN, 16_000, &mut rng).len(), 46);
    }
}
