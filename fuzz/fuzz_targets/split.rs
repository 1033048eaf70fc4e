//! Shared by the targets: the first input bytes choose where the rest is cut into reads,
//! so libFuzzer explores read boundaries together with content.

/// Splits `data` into (cuts, stream): byte 0 is how many cut bytes follow (at most 16);
/// each cut byte, scaled to the stream's length, is a read boundary.
pub fn split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 17).min(rest.len());
    let (cut_bytes, stream) = rest.split_at(n);
    let mut cuts: Vec<usize> = cut_bytes
        .iter()
        .map(|&b| usize::from(b) * stream.len() / 255)
        .collect();
    cuts.push(stream.len());
    cuts.sort_unstable();
    cuts.dedup();
    (cuts, stream)
}

/// The reads of `stream` cut at `cuts` (empty reads skipped), each with its time.
pub fn reads<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<(u64, &'a [u8])> {
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts {
        if to > from {
            out.push(((out.len() as u64 + 1) * 1_000_000, &stream[from..to]));
            from = to;
        }
    }
    out
}
