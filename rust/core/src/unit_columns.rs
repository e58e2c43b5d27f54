//! The results of many independent fits (the genes of a batch, the deleted units of case
//! deletion) as unit-major columns: each unit appends a block of fixed width to every column,
//! and a unit without a result appends NaN blocks, so that unit u's values are always at
//! `u·width .. (u+1)·width` and a failed unit cannot shift the ones after it.

/// Every unit's blocks concatenated in unit order, and every unit's reason for having none
/// (None where it has a result). `blocks(result)` gives a unit's K blocks, block k of length
/// `widths[k]`; an `Err(reason)` unit gets `widths[k]` NaN in each column.
pub(crate) fn unit_major_columns<T, const K: usize>(
    outcomes: impl ExactSizeIterator<Item = std::result::Result<T, String>>,
    widths: [usize; K],
    mut blocks: impl FnMut(T) -> [Vec<f64>; K],
) -> ([Vec<f64>; K], Vec<Option<String>>) {
    let n_units = outcomes.len();
    let mut columns: [Vec<f64>; K] =
        std::array::from_fn(|k| Vec::with_capacity(n_units * widths[k]));
    let mut errors = Vec::with_capacity(n_units);
    for outcome in outcomes {
        match outcome {
            Ok(result) => {
                for (k, block) in blocks(result).into_iter().enumerate() {
                    debug_assert_eq!(block.len(), widths[k], "block {k} has the wrong width");
                    columns[k].extend(block);
                }
                errors.push(None);
            }
            Err(reason) => {
                for (column, &width) in columns.iter_mut().zip(&widths) {
                    column.extend(std::iter::repeat_n(f64::NAN, width));
                }
                errors.push(Some(reason));
            }
        }
    }
    (columns, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_unit_keeps_the_others_in_place() {
        let outcomes: Vec<std::result::Result<(f64, f64), String>> =
            vec![Ok((1.0, 2.0)), Err("no".into()), Ok((3.0, 4.0))];
        let ([pairs, sums], errors) = unit_major_columns(outcomes.into_iter(), [2, 1], |(a, b)| {
            [vec![a, b], vec![a + b]]
        });
        assert_eq!(&pairs[..2], &[1.0, 2.0]);
        assert!(pairs[2].is_nan() && pairs[3].is_nan());
        assert_eq!(&pairs[4..], &[3.0, 4.0]);
        assert_eq!(sums[0], 3.0);
        assert!(sums[1].is_nan());
        assert_eq!(sums[2], 7.0);
        assert_eq!(errors, vec![None, Some("no".to_string()), None]);
    }
}
