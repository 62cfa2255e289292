//! Raw counter samples to monotonic totals and rates.
