//! The role of an appliance in its pair: the router pair is one VRRP MASTER and one BACKUP, and
//! every profile with roles is built once per role (the site file gives each role its own
//! addresses). A profile may have no role at all (`roles = []`, e.g. the lab's `client`
//! machines): it is built once and its images say [`NO_ROLE`].

use std::fmt;
use std::str::FromStr;

/// The role of an image built from a role-less profile (`roles = []` in its profile.toml): `-`,
/// in `appliance.toml`'s `role`, the ready line (`role=-`) and the manifest. It is not a
/// [`Role`] and never parses as one; such an image is named and has its host name after the
/// profile alone (`client.iso`, host `client`), and templates see `role = "-"`, `is_master`
/// false.
pub const NO_ROLE: &str = "-";

/// MASTER or BACKUP. Written upper-case everywhere (image names use the lower-case form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Master,
    Backup,
}

impl Role {
    /// Every role, in the order releases build them.
    pub const ALL: [Role; 2] = [Role::Master, Role::Backup];

    /// `MASTER` or `BACKUP`: the spelling of `appliance.toml`, the ready line and `--role`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Master => "MASTER",
            Role::Backup => "BACKUP",
        }
    }

    /// `master` or `backup`, as in image and host names (`router-backup`).
    pub const fn lower(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    /// Case-insensitive, because users type `--role backup`.
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("bad role {s:?}: expected MASTER or BACKUP"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_prints_upper() {
        assert_eq!("backup".parse::<Role>().unwrap(), Role::Backup);
        assert_eq!("MASTER".parse::<Role>().unwrap(), Role::Master);
        assert_eq!(Role::Backup.to_string(), "BACKUP");
        assert_eq!(Role::Master.lower(), "master");
        assert!("slave"
            .parse::<Role>()
            .unwrap_err()
            .contains("MASTER or BACKUP"));
        assert!(NO_ROLE.parse::<Role>().is_err());
    }
}
