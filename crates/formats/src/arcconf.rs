//! Output of Microchip/Adaptec's `arcconf`: `arcconf getversion` (every
//! controller) and `arcconf getconfig <n> AD` (one controller's adapter
//! data). Column widths differ between arcconf releases, so lines are read
//! as `key : value`, never by offset.

use serde::Serialize;

/// A component version as arcconf prints it: `1.2-1 (50983)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The text before the build number, `1.2-1`.
    pub version: String,
    /// The build number in parentheses, `50983`, when present.
    pub build: Option<String>,
    /// The value as printed.
    pub raw: String,
}

impl Version {
    fn parse(raw: &str) -> Version {
        let raw = raw.trim();
        // Some releases name the OS first: `Driver : Linux 1.2.10-025`.
        let mut words = raw
            .split_whitespace()
            .skip_while(|w| !w.chars().any(|c| c.is_ascii_digit()));
        let version = words.next().unwrap_or(raw).to_string();
        let build = words
            .next()
            .and_then(|w| w.strip_prefix('(')?.strip_suffix(')'))
            .filter(|b| b.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string);
        Version {
            version,
            build,
            raw: raw.to_string(),
        }
    }
}

/// What arcconf says about one controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Controller {
    /// arcconf's controller number (1-based).
    pub number: u32,
    /// `Controller Model`, when the output has it (getconfig AD).
    pub model: Option<String>,
    /// `Controller Status`, when the output has it.
    pub status: Option<String>,
    /// `Driver` version.
    pub driver: Option<Version>,
    /// `Firmware` version.
    pub firmware: Option<Version>,
    /// `Staged Firmware` version (getversion).
    pub staged_firmware: Option<Version>,
    /// `BIOS` version.
    pub bios: Option<Version>,
    /// `Boot Flash` version.
    pub boot_flash: Option<Version>,
}

impl Controller {
    /// Records a `key : value` line. The first occurrence wins: longer
    /// outputs (`getconfig … AL`) repeat keys such as `Firmware` per disk.
    fn take(&mut self, key: &str, value: &str) {
        let slot = match key.to_ascii_lowercase().as_str() {
            "driver" => &mut self.driver,
            "firmware" => &mut self.firmware,
            "staged firmware" => &mut self.staged_firmware,
            "bios" => &mut self.bios,
            "boot flash" => &mut self.boot_flash,
            "controller model" => {
                self.model.get_or_insert_with(|| value.trim().to_string());
                return;
            }
            "controller status" => {
                self.status.get_or_insert_with(|| value.trim().to_string());
                return;
            }
            _ => return,
        };
        slot.get_or_insert_with(|| Version::parse(value));
    }
}

fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    Some((key.trim(), value.trim()))
}

/// Parses `arcconf getversion`: a `Controller #N` heading per controller,
/// each followed by its version lines.
pub fn parse_getversion(text: &str) -> Vec<Controller> {
    let mut controllers: Vec<Controller> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(number) = trimmed
            .strip_prefix("Controller #")
            .and_then(|n| n.trim().parse().ok())
        {
            controllers.push(Controller {
                number,
                ..Controller::default()
            });
            continue;
        }
        if let (Some(current), Some((key, value))) = (controllers.last_mut(), key_value(trimmed)) {
            current.take(key, value);
        }
    }
    controllers
}

/// Parses `arcconf getconfig <number> AD` for controller `number`.
pub fn parse_getconfig_ad(number: u32, text: &str) -> Controller {
    let mut controller = Controller {
        number,
        ..Controller::default()
    };
    for (key, value) in text.lines().filter_map(|l| key_value(l.trim())) {
        controller.take(key, value);
    }
    controller
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_with_and_without_build() {
        let v = Version::parse(" 1.2-1 (50983) ");
        assert_eq!(v.version, "1.2-1");
        assert_eq!(v.build.as_deref(), Some("50983"));
        let v = Version::parse("7.5-0");
        assert_eq!(v.build, None);
        let v = Version::parse("Linux 1.2.10-025");
        assert_eq!(v.version, "1.2.10-025");
    }

    #[test]
    fn getversion_without_controllers() {
        assert!(parse_getversion("Controllers found: 0\n").is_empty());
    }
}
