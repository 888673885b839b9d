//! Tenants as VictoriaMetrics' cluster names them in URLs: `accountID[:projectID]`.

use std::fmt;
use std::str::FromStr;

use crate::error::TenantError;

/// A tenant: every series and every query belongs to exactly one.
/// `projectID` defaults to 0 when the URL gives only `accountID`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant {
    /// The first part of `accountID:projectID`.
    pub account_id: u32,
    /// The second part; 0 when absent.
    pub project_id: u32,
}

impl Tenant {
    /// The tenant's 8-byte form used in series keys: account then project, big-endian.
    pub fn to_be_bytes(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self.account_id.to_be_bytes());
        out[4..].copy_from_slice(&self.project_id.to_be_bytes());
        out
    }

    /// The tenant as sent on the storage gRPC API.
    pub fn to_proto(self) -> cairn_proto::storage::Tenant {
        cairn_proto::storage::Tenant {
            account_id: self.account_id,
            project_id: self.project_id,
        }
    }

    /// The tenant of a storage gRPC request; a missing field means tenant `0:0`.
    pub fn from_proto(t: Option<&cairn_proto::storage::Tenant>) -> Self {
        t.map(|t| Tenant {
            account_id: t.account_id,
            project_id: t.project_id,
        })
        .unwrap_or_default()
    }
}

impl FromStr for Tenant {
    type Err = TenantError;

    /// Parses `"42"` or `"42:7"`. Errors: anything else, including empty parts,
    /// signs, spaces and values above `u32::MAX`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TenantError { input: s.to_string() };
        let parse = |part: &str| -> Result<u32, TenantError> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            part.parse::<u32>().map_err(|_| err())
        };
        match s.split_once(':') {
            None => Ok(Tenant {
                account_id: parse(s)?,
                project_id: 0,
            }),
            Some((account, project)) => Ok(Tenant {
                account_id: parse(account)?,
                project_id: parse(project)?,
            }),
        }
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.account_id, self.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_account_and_project() {
        assert_eq!("0".parse(), Ok(Tenant::default()));
        assert_eq!(
            "42:7".parse(),
            Ok(Tenant {
                account_id: 42,
                project_id: 7
            })
        );
        assert_eq!(
            "4294967295:4294967295".parse::<Tenant>().map(|t| t.to_string()),
            Ok("4294967295:4294967295".to_string())
        );
    }

    #[test]
    fn rejects_malformed_tenants() {
        for bad in ["", ":", "1:", ":1", "a", "1:b", "-1", "+1", " 1", "1:2:3", "4294967296"] {
            assert!(bad.parse::<Tenant>().is_err(), "{bad:?} should be rejected");
        }
    }
}
