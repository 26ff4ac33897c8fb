//! Seconds since the Unix epoch as a UTC calendar date and time, for the
//! names of backup files (`<file>.<YYYY-MM-DD@HH:MM:SS>~`, Ansible's form).

use std::fmt;

/// A UTC date and time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// 1 to 12.
    pub month: i64,
    /// 1 to 31.
    pub day: i64,
    /// 0 to 23.
    pub hour: u64,
    /// 0 to 59.
    pub minute: u64,
    /// 0 to 59.
    pub second: u64,
}

impl DateTime {
    /// The UTC date and time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: u64) -> DateTime {
        let (days, time) = ((secs / 86_400) as i64, secs % 86_400);
        // Days since 1970-01-01 to a date, counting in 400-year eras that
        // start on 1 March (so the leap day ends a year).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        DateTime {
            year: year_of_era + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: time / 3600,
            minute: time % 3600 / 60,
            second: time % 60,
        }
    }
}

/// `YYYY-MM-DD@HH:MM:SS`, the stamp Ansible puts in backup file names.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}@{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        for (secs, shown) in [
            (0, "1970-01-01@00:00:00"),
            (951_782_400, "2000-02-29@00:00:00"),
            (1_709_251_199, "2024-02-29@23:59:59"),
            (1_795_000_000, "2026-11-18@11:06:40"),
            (4_107_542_400, "2100-03-01@00:00:00"),
        ] {
            assert_eq!(DateTime::from_unix(secs).to_string(), shown, "{secs}");
        }
    }
}
