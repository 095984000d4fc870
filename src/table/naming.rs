//! The naming rules of AWS identifiers, the one place each is written: region names (the
//! configuration, the scan's region predicates and INSERT share it), AMI ids (INSERT
//! refuses a malformed one; the scan drops one from `ImageIds`, as it matches nothing) and
//! S3 general-purpose bucket names (INSERT). Pure functions; the wording of the refusals
//! that name a region is in `regions`.

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: lowercase words and a number. No AWS
/// region is named otherwise.
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    parts.len() >= 3
        && words
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

/// `ami-` followed by 8 or 17 lowercase hexadecimal digits.
pub fn check_ami_id(ami: &str) -> Result<(), String> {
    let ok = ami.strip_prefix("ami-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{ami}` is not an AMI id (expected ami- followed by 8 or 17 lowercase hex digits)"
        ))
    }
}

/// Amazon S3's general-purpose bucket naming rules.
pub fn check_bucket(bucket: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("`{bucket}` is not a valid S3 bucket name: {why}"));
    if !(3..=63).contains(&bucket.len()) {
        return fail("it must be 3 to 63 characters long");
    }
    if !bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return fail("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let first = bucket.chars().next().expect("non-empty");
    let last = bucket.chars().last().expect("non-empty");
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return fail("it must begin and end with a letter or digit");
    }
    if bucket.contains("..") {
        return fail("it must not contain two adjacent dots");
    }
    if bucket.split('.').count() == 4 && bucket.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return fail("it must not be formatted as an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if bucket.starts_with(prefix) {
            return fail(&format!("it must not start with `{prefix}`"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if bucket.ends_with(suffix) {
            return fail(&format!("it must not end with `{suffix}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-isoe-west-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "us-east",
            "us-east1",
            "US-EAST-1",
            "us--1",
            "us-east-1'",
            "' OR '1'='1",
            "$2",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn ami_ids() {
        assert!(check_ami_id("ami-0123456789abcdef0").is_ok());
        assert!(check_ami_id("ami-12345678").is_ok());
        for bad in [
            "ami-123",
            "ami-0123456789ABCDEF0",
            "img-12345678",
            "",
            "ami-1234567g",
        ] {
            assert!(check_ami_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_names() {
        for good in ["my-bucket", "a.b.c", "abc", "ami-archive-us-east-1"] {
            assert!(check_bucket(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "under_score",
            &"a".repeat(64),
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }
}
