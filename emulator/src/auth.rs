//! The credential scope of a request, read from the SigV4 `Authorization` header
//! (`Credential=AKID/yyyymmdd/REGION/SERVICE/aws4_request`): its access key says who calls,
//! its region and service what is asked. One endpoint serves every region and service this
//! way. Signatures are not verified: the emulator keeps no secret keys.

use crate::error::ApiError;

/// The parts of a credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The access key id.
    pub access_key: String,
    /// The region.
    pub region: String,
    /// The service (`ec2`, `sts`, `organizations`, ...).
    pub service: String,
}

/// The EC2 service's region, for the tests that read only that.
#[cfg(test)]
pub fn region_from_authorization(header: Option<&str>) -> Result<String, ApiError> {
    let scope = scope_from_authorization(header)?;
    if scope.service != "ec2" {
        return Err(wrong_service());
    }
    Ok(scope.region)
}

/// The answer (EC2's) to a scope naming a service the emulator does not serve.
pub fn wrong_service() -> ApiError {
    ApiError::auth_failure("Credential should be scoped to correct service: 'ec2'.")
}

/// The credential scope, or the error AWS answers for a missing or unusable header.
pub fn scope_from_authorization(header: Option<&str>) -> Result<Scope, ApiError> {
    let header = header.ok_or_else(ApiError::missing_authentication_token)?;
    let credential = header
        .split([',', ' '])
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))
        .ok_or_else(|| {
            ApiError::auth_failure(
                "AWS was not able to validate the provided access credentials: the Authorization header has no SigV4 Credential",
            )
        })?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope[..] else {
        return Err(ApiError::auth_failure(format!(
            "AWS was not able to validate the provided access credentials: malformed credential scope '{credential}'"
        )));
    };
    let well_formed = !access_key.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && !service.is_empty()
        && terminator == "aws4_request";
    if !well_formed {
        return Err(ApiError::auth_failure(format!(
            "AWS was not able to validate the provided access credentials: malformed credential scope '{credential}'"
        )));
    }
    Ok(Scope {
        access_key: access_key.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// The answer to a well-formed scope naming a region the emulator does not serve.
pub fn region_not_enabled(region: &str) -> ApiError {
    ApiError::auth_failure(format!(
        "AWS was not able to validate the provided access credentials: the region '{region}' is not enabled for this account"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_region_of_a_sigv4_header() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(
            region_from_authorization(Some(header)).unwrap(),
            "eu-west-1"
        );
        let compact = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/ec2/aws4_request,SignedHeaders=host,Signature=abc";
        assert_eq!(
            region_from_authorization(Some(compact)).unwrap(),
            "us-east-1"
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        assert_eq!(
            region_from_authorization(None).unwrap_err().code,
            "MissingAuthenticationToken"
        );
        for bad in [
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/ec2/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/ec2",
            "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request",
        ] {
            let err = region_from_authorization(Some(bad)).unwrap_err();
            assert_eq!(err.code, "AuthFailure", "{bad}");
            assert_eq!(err.status, 401);
        }
        let scope = scope_from_authorization(Some(
            "AWS4-HMAC-SHA256 Credential=ASIAX/20260101/us-east-1/sts/aws4_request",
        ))
        .unwrap();
        assert_eq!(scope.access_key, "ASIAX");
        assert_eq!(scope.service, "sts");
        assert!(region_not_enabled("af-south-1")
            .message
            .contains("'af-south-1' is not enabled for this account"));
    }
}
