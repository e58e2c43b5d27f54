//! Level codes of a grouping column of strings as a CSV gives them (Arrow's offsets and bytes):
//! one hash pass over the rows, then a sort of the distinct values alone. Byte order is UTF-8's
//! code-point order, the order of pandas' Categorical and so of every fit's levels. pandas'
//! Categorical sorts every row instead; Arrow's dictionary encoding plus a sort of its dictionary
//! costs several Python-level calls, more than a small model's fit.

use rustc_hash::FxHashMap;

use crate::error::{CoreError, Result};

/// Each row's level (the rank of its value among the distinct values) and, per level in sorted
/// order, the first row holding it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedLevels {
    pub codes: Vec<u32>,
    pub first_rows: Vec<usize>,
}

/// Levels of the strings `data[offsets[i]..offsets[i + 1]]`, i = 0..offsets.len() − 1.
pub fn encode_strings(offsets: &[i64], data: &[u8]) -> Result<EncodedLevels> {
    let n = offsets.len().saturating_sub(1);
    let bounds = |i: usize| -> Result<(usize, usize)> {
        let (start, end) = (offsets[i], offsets[i + 1]);
        if start < 0 || end < start || end as usize > data.len() {
            return Err(CoreError::InvalidInput(format!(
                "string offsets {start}..{end} of row {i} are outside the {} bytes of data",
                data.len()
            )));
        }
        Ok((start as usize, end as usize))
    };
    // Codes in order of first appearance, then the distinct values sorted.
    let mut first_seen: FxHashMap<&[u8], u32> = FxHashMap::default();
    let mut distinct: Vec<(&[u8], usize)> = Vec::new();
    let mut appearance = Vec::with_capacity(n);
    for i in 0..n {
        let (start, end) = bounds(i)?;
        let value = &data[start..end];
        let code = *first_seen.entry(value).or_insert_with(|| {
            distinct.push((value, i));
            (distinct.len() - 1) as u32
        });
        appearance.push(code);
    }
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| distinct[a as usize].0.cmp(distinct[b as usize].0));
    let mut rank = vec![0u32; distinct.len()];
    for (position, &level) in order.iter().enumerate() {
        rank[level as usize] = position as u32;
    }
    Ok(EncodedLevels {
        codes: appearance.iter().map(|&code| rank[code as usize]).collect(),
        first_rows: order
            .iter()
            .map(|&level| distinct[level as usize].1)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(values: &[&str]) -> EncodedLevels {
        let mut offsets = vec![0i64];
        let mut data = Vec::new();
        for value in values {
            data.extend_from_slice(value.as_bytes());
            offsets.push(data.len() as i64);
        }
        encode_strings(&offsets, &data).unwrap()
    }

    #[test]
    fn levels_are_sorted_by_code_point_and_codes_follow() {
        let levels = encode(&["S10", "S9", "S10", "", "é", "E", "S9"]);
        // Sorted: "", "E", "S10", "S9", "é" (code points, so "S10" < "S9" and "E" < "é").
        assert_eq!(levels.codes, vec![2, 3, 2, 0, 4, 1, 3]);
        assert_eq!(levels.first_rows, vec![3, 5, 0, 1, 4]);
    }

    #[test]
    fn no_rows_have_no_levels() {
        assert_eq!(
            encode(&[]),
            EncodedLevels {
                codes: vec![],
                first_rows: vec![]
            }
        );
        assert_eq!(encode_strings(&[], &[]).unwrap().codes, Vec::<u32>::new());
    }

    #[test]
    fn offsets_outside_the_data_are_an_error() {
        assert!(encode_strings(&[0, 5], b"abc").is_err());
        assert!(encode_strings(&[2, 1], b"abc").is_err());
        assert!(encode_strings(&[-1, 1], b"abc").is_err());
    }
}
