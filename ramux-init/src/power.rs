//! What PID 1 does on which signal, following busybox init so busybox `poweroff`, `reboot` and
//! `halt` typed at the console work unchanged: SIGUSR2 power-off, SIGTERM reboot, SIGUSR1 halt,
//! SIGINT (Ctrl-Alt-Del, once `RB_DISABLE_CAD` is set) reboot.

use nix::sys::signal::Signal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PowerOff,
    Reboot,
    Halt,
}

impl Action {
    /// Maps a signal received by PID 1; `None` for signals init ignores or handles otherwise.
    pub fn from_signal(sig: Signal) -> Option<Action> {
        match sig {
            Signal::SIGUSR2 | Signal::SIGPWR => Some(Action::PowerOff),
            Signal::SIGTERM | Signal::SIGINT => Some(Action::Reboot),
            Signal::SIGUSR1 => Some(Action::Halt),
            _ => None,
        }
    }

    /// The console line announcing it (`ramux: powering off` is part of the contract).
    pub fn line(self) -> &'static str {
        match self {
            Action::PowerOff => "ramux: powering off",
            Action::Reboot => "ramux: rebooting",
            Action::Halt => "ramux: halting",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_conventions() {
        assert_eq!(Action::from_signal(Signal::SIGUSR2), Some(Action::PowerOff));
        assert_eq!(Action::from_signal(Signal::SIGTERM), Some(Action::Reboot));
        assert_eq!(Action::from_signal(Signal::SIGUSR1), Some(Action::Halt));
        assert_eq!(Action::from_signal(Signal::SIGINT), Some(Action::Reboot));
        assert_eq!(Action::from_signal(Signal::SIGHUP), None);
        assert_eq!(Action::from_signal(Signal::SIGCHLD), None);
        assert_eq!(Action::PowerOff.line(), "ramux: powering off");
    }
}
