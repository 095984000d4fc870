//! The Query protocol's parameters: the form fields of a request (body of a POST, query string
//! of a GET), and their reading into one typed request per action. EC2 flattens lists with
//! 1-based indexes (`ImageId.1`, `Filter.1.Name`, `Filter.1.Value.1`, `S3ObjectTag.1.Key`).
//! Only checks that need no state are made here; the actions check the rest.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ApiError;
use crate::store::{Filter, ObjectTag};

/// DescribeStoreImageTasks accepts at most this many ImageIds.
pub const MAX_IMAGE_IDS: usize = 20;
/// MaxResults range, and the page size when it is absent.
pub const MAX_RESULTS: usize = 200;

/// The raw form fields of a request; a repeated name keeps its last value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Reads the query string, then the body (its fields win).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Params, ApiError> {
        let mut fields = BTreeMap::new();
        let malformed = |_| {
            ApiError::invalid_parameter_value(
                "The request's parameters are not a valid form encoding",
            )
        };
        if let Some(query) = query {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(query).map_err(malformed)?;
            fields.extend(pairs);
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(malformed)?;
        fields.extend(pairs);
        Ok(Params(fields))
    }

    /// The value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The `Action` field.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// Every field, as received.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The fields other than `Action` and `Version`, which every action accepts.
    fn own(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(k, _)| *k != "Action" && *k != "Version")
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A valid `DescribeStoreImageTasks` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeRequest {
    /// The ImageIds, deduplicated, in the order given; empty when none.
    pub image_ids: Vec<String>,
    /// The filters (ignored when ImageIds are given).
    pub filters: Vec<Filter>,
    /// The filters in a canonical spelling, which a pagination token is bound to.
    pub filters_fingerprint: String,
    /// MaxResults, checked to be in 1..=200.
    pub max_results: Option<usize>,
    /// NextToken, when given and not empty.
    pub next_token: Option<String>,
    /// DryRun.
    pub dry_run: bool,
}

/// A valid `CreateStoreImageTask` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// The AMI to store (well-formed).
    pub image_id: String,
    /// The destination bucket.
    pub bucket: String,
    /// The object's tags.
    pub tags: Vec<ObjectTag>,
    /// DryRun.
    pub dry_run: bool,
}

/// A valid `DescribeRegions` request (its filters and region names are accepted and ignored:
/// every region is described, and clients filter on `optInStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionsRequest {
    /// DryRun.
    pub dry_run: bool,
}

#[derive(Default)]
struct RawFilter {
    name: Option<String>,
    values: BTreeMap<u32, String>,
}

#[derive(Default)]
struct RawTag {
    key: Option<String>,
    value: Option<String>,
}

impl DescribeRequest {
    /// Reads and checks the parameters.
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let mut image_ids = BTreeMap::new();
        let mut filters: BTreeMap<u32, RawFilter> = BTreeMap::new();
        let mut max_results = None;
        let mut next_token = None;
        let mut dry_run = false;
        for (name, value) in params.own() {
            match name {
                "MaxResults" => max_results = Some(value),
                "NextToken" => next_token = Some(value),
                "DryRun" => dry_run = parse_bool(name, value)?,
                _ => {
                    if let Some(n) = name.strip_prefix("ImageId.").and_then(parse_index) {
                        image_ids.insert(n, value.to_owned());
                    } else if !read_filter_field(&mut filters, name, value) {
                        return Err(ApiError::unknown_parameter(name));
                    }
                }
            }
        }

        if image_ids.len() > MAX_IMAGE_IDS {
            return Err(ApiError::invalid_parameter_value(format!(
                "The request may contain at most {MAX_IMAGE_IDS} ImageIds, not {}",
                image_ids.len()
            )));
        }
        let mut unique = BTreeSet::new();
        let mut ids = Vec::with_capacity(image_ids.len());
        for id in image_ids.into_values() {
            check_ami_id(&id)?;
            if unique.insert(id.clone()) {
                ids.push(id);
            }
        }

        let max_results = match max_results {
            None => None,
            Some(_) if !ids.is_empty() => {
                return Err(ApiError::invalid_parameter_combination(
                    "The parameter MaxResults cannot be used with the parameter ImageIds",
                ))
            }
            Some(raw) => Some(parse_max_results(raw)?),
        };
        let next_token = next_token.filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_some() && !ids.is_empty() {
            return Err(ApiError::invalid_parameter_combination(
                "The parameter NextToken cannot be used with the parameter ImageIds",
            ));
        }

        let (filters, filters_fingerprint) = store_filters(filters)?;
        Ok(DescribeRequest {
            image_ids: ids,
            filters,
            filters_fingerprint,
            max_results,
            next_token,
            dry_run,
        })
    }
}

impl CreateRequest {
    /// Reads and checks the parameters.
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let mut image_id = None;
        let mut bucket = None;
        let mut tags: BTreeMap<u32, RawTag> = BTreeMap::new();
        let mut dry_run = false;
        for (name, value) in params.own() {
            match name {
                "ImageId" => image_id = Some(value),
                "Bucket" => bucket = Some(value),
                "DryRun" => dry_run = parse_bool(name, value)?,
                _ => {
                    let field = name.strip_prefix("S3ObjectTag.").and_then(|rest| {
                        let (n, field) = rest.split_once('.')?;
                        Some((parse_index(n)?, field))
                    });
                    match field {
                        Some((n, "Key")) => tags.entry(n).or_default().key = Some(value.to_owned()),
                        Some((n, "Value")) => {
                            tags.entry(n).or_default().value = Some(value.to_owned())
                        }
                        _ => return Err(ApiError::unknown_parameter(name)),
                    }
                }
            }
        }
        let image_id = image_id
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing_parameter("ImageId"))?;
        let bucket = bucket
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing_parameter("Bucket"))?;
        check_ami_id(image_id)?;
        let tags = tags
            .into_iter()
            .map(|(n, tag)| match tag.key {
                Some(key) if !key.is_empty() => Ok(ObjectTag {
                    key,
                    value: tag.value,
                }),
                _ => Err(ApiError::missing_parameter(&format!("S3ObjectTag.{n}.Key"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CreateRequest {
            image_id: image_id.to_owned(),
            bucket: bucket.to_owned(),
            tags,
            dry_run,
        })
    }
}

impl RegionsRequest {
    /// Reads and checks the parameters.
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let mut dry_run = false;
        let mut ignored_filters = BTreeMap::new();
        for (name, value) in params.own() {
            match name {
                "DryRun" => dry_run = parse_bool(name, value)?,
                "AllRegions" => {
                    parse_bool(name, value)?;
                }
                _ => {
                    let region_name = name.strip_prefix("RegionName.").and_then(parse_index);
                    if region_name.is_none()
                        && !read_filter_field(&mut ignored_filters, name, value)
                    {
                        return Err(ApiError::unknown_parameter(name));
                    }
                }
            }
        }
        Ok(RegionsRequest { dry_run })
    }
}

/// Reads `Filter.N.Name` / `Filter.N.Value.M`; false when `name` is neither.
fn read_filter_field(filters: &mut BTreeMap<u32, RawFilter>, name: &str, value: &str) -> bool {
    let Some((n, field)) = name
        .strip_prefix("Filter.")
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    let Some(n) = parse_index(n) else {
        return false;
    };
    if field == "Name" {
        filters.entry(n).or_default().name = Some(value.to_owned());
        return true;
    }
    match field.strip_prefix("Value.").and_then(parse_index) {
        Some(m) => {
            filters
                .entry(n)
                .or_default()
                .values
                .insert(m, value.to_owned());
            true
        }
        None => false,
    }
}

/// The store's filters and their canonical spelling (sorted, so that the same filters in
/// another order are the same listing).
fn store_filters(raw: BTreeMap<u32, RawFilter>) -> Result<(Vec<Filter>, String), ApiError> {
    let mut filters = Vec::with_capacity(raw.len());
    let mut canonical = Vec::with_capacity(raw.len());
    for (n, filter) in raw {
        let name = filter
            .name
            .ok_or_else(|| ApiError::missing_parameter(&format!("Filter.{n}.Name")))?;
        let values: BTreeSet<String> = filter.values.into_values().collect();
        if values.is_empty() {
            return Err(ApiError::invalid_parameter_value(format!(
                "The filter '{name}' must have at least one value"
            )));
        }
        let joined: Vec<&str> = values.iter().map(String::as_str).collect();
        canonical.push(format!("{name}={}", joined.join("\u{1f}")));
        filters.push(match name.as_str() {
            "task-state" => Filter::TaskState(values),
            "bucket" => Filter::Bucket(values),
            _ => {
                return Err(ApiError::invalid_parameter_value(format!(
                    "The filter '{name}' is invalid"
                )))
            }
        });
    }
    canonical.sort();
    Ok((filters, canonical.join("\u{1e}")))
}

/// A list index: a decimal number from 1, without sign or leading zeros.
fn parse_index(s: &str) -> Option<u32> {
    let valid = !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| s.parse().ok()).flatten()
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ApiError::invalid_parameter_value(format!(
            "Invalid value '{value}' for {name}: expecting true or false"
        )))
    }
}

fn parse_max_results(raw: &str) -> Result<usize, ApiError> {
    let out_of_range = || {
        ApiError::invalid_parameter_value(format!(
            "Value ( {raw} ) for parameter MaxResults is invalid. Expecting a value between 1 and {MAX_RESULTS}."
        ))
    };
    let value: i64 = raw.trim().parse().map_err(|_| out_of_range())?;
    match usize::try_from(value) {
        Ok(v) if (1..=MAX_RESULTS).contains(&v) => Ok(v),
        _ => Err(out_of_range()),
    }
}

/// Whether `id` is `ami-` and 8 or 17 lowercase hex digits.
pub fn is_ami_id(id: &str) -> bool {
    id.strip_prefix("ami-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check_ami_id(id: &str) -> Result<(), ApiError> {
    if is_ami_id(id) {
        Ok(())
    } else {
        Err(ApiError::ami_malformed(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(form: &str) -> Params {
        Params::parse(None, form.as_bytes()).unwrap()
    }

    #[test]
    fn query_and_body_fields_are_merged() {
        let p = Params::parse(Some("Action=A&X=1"), b"X=2&Y=a%20b").unwrap();
        assert_eq!(p.action(), Some("A"));
        assert_eq!(p.get("X"), Some("2"));
        assert_eq!(p.get("Y"), Some("a b"));
    }

    #[test]
    fn ami_ids() {
        assert!(is_ami_id("ami-12345678"));
        assert!(is_ami_id("ami-0123456789abcdef0"));
        for bad in [
            "ami-1234567",
            "ami-0123456789ABCDEF0",
            "ami-123456789",
            "img-12345678",
            "",
        ] {
            assert!(!is_ami_id(bad), "{bad}");
        }
    }

    #[test]
    fn describe_reads_flattened_lists() {
        let r = DescribeRequest::from_params(&params(
            "Action=DescribeStoreImageTasks&Version=2016-11-15&Filter.2.Name=bucket&Filter.2.Value.1=b&\
             Filter.1.Name=task-state&Filter.1.Value.2=Failed&Filter.1.Value.1=Completed&MaxResults=5&DryRun=false",
        ))
        .unwrap();
        assert_eq!(r.max_results, Some(5));
        assert!(!r.dry_run);
        assert_eq!(r.filters.len(), 2);
        assert_eq!(
            r.filters[0],
            Filter::TaskState(["Completed".into(), "Failed".into()].into())
        );
        // The same filters in another order have the same fingerprint.
        let again = DescribeRequest::from_params(&params(
            "Filter.1.Name=bucket&Filter.1.Value.1=b&Filter.2.Name=task-state&Filter.2.Value.1=Failed&Filter.2.Value.2=Completed",
        ))
        .unwrap();
        assert_eq!(r.filters_fingerprint, again.filters_fingerprint);
        let other =
            DescribeRequest::from_params(&params("Filter.1.Name=bucket&Filter.1.Value.1=c"))
                .unwrap();
        assert_ne!(r.filters_fingerprint, other.filters_fingerprint);

        let ids = DescribeRequest::from_params(&params(
            "ImageId.2=ami-22222222&ImageId.1=ami-11111111&ImageId.3=ami-11111111",
        ))
        .unwrap();
        assert_eq!(ids.image_ids, ["ami-11111111", "ami-22222222"]);
    }

    #[test]
    fn describe_rejects_what_aws_rejects() {
        let code = |form: &str| {
            DescribeRequest::from_params(&params(form))
                .unwrap_err()
                .code
        };
        let many: Vec<String> = (1..=21)
            .map(|i| format!("ImageId.{i}=ami-{i:08x}"))
            .collect();
        assert_eq!(code(&many.join("&")), "InvalidParameterValue");
        assert_eq!(code("ImageId.1=ami-xyz"), "InvalidAMIID.Malformed");
        assert_eq!(
            code("ImageId.1=ami-12345678&MaxResults=5"),
            "InvalidParameterCombination"
        );
        assert_eq!(code("MaxResults=0"), "InvalidParameterValue");
        assert_eq!(code("MaxResults=201"), "InvalidParameterValue");
        assert_eq!(code("MaxResults=ten"), "InvalidParameterValue");
        assert_eq!(
            code("Filter.1.Name=owner&Filter.1.Value.1=x"),
            "InvalidParameterValue"
        );
        assert_eq!(code("Filter.1.Name=bucket"), "InvalidParameterValue");
        assert_eq!(code("Filter.1.Value.1=x"), "MissingParameter");
        assert_eq!(code("DryRun=maybe"), "InvalidParameterValue");
        assert_eq!(code("MaxResult=5"), "UnknownParameter");
        assert_eq!(code("ImageId.0=ami-12345678"), "UnknownParameter");
        assert!(DescribeRequest::from_params(&params("MaxResults=200&NextToken=")).is_ok());
    }

    #[test]
    fn create_reads_and_checks_its_parameters() {
        let r = CreateRequest::from_params(&params(
            "ImageId=ami-12345678&Bucket=b&S3ObjectTag.1.Key=k&S3ObjectTag.1.Value=v&S3ObjectTag.2.Key=only&DryRun=true",
        ))
        .unwrap();
        assert_eq!(r.image_id, "ami-12345678");
        assert_eq!(r.bucket, "b");
        assert!(r.dry_run);
        assert_eq!(
            r.tags,
            [
                ObjectTag {
                    key: "k".into(),
                    value: Some("v".into())
                },
                ObjectTag {
                    key: "only".into(),
                    value: None
                },
            ]
        );
        let err = |form: &str| CreateRequest::from_params(&params(form)).unwrap_err();
        assert_eq!(
            err("Bucket=b").message,
            "The request must contain the parameter ImageId"
        );
        assert_eq!(
            err("ImageId=ami-12345678").message,
            "The request must contain the parameter Bucket"
        );
        assert_eq!(err("ImageId=ami-1&Bucket=b").code, "InvalidAMIID.Malformed");
        assert_eq!(
            err("ImageId=ami-12345678&Bucket=b&S3ObjectTag.1.Value=v").code,
            "MissingParameter"
        );
    }

    #[test]
    fn regions_accepts_its_parameters() {
        assert!(RegionsRequest::from_params(&params(
            "AllRegions=true&RegionName.1=x&Filter.1.Name=opt-in-status&Filter.1.Value.1=opted-in"
        ))
        .is_ok());
        assert!(
            RegionsRequest::from_params(&params("DryRun=true"))
                .unwrap()
                .dry_run
        );
        assert_eq!(
            RegionsRequest::from_params(&params("Foo=1"))
                .unwrap_err()
                .code,
            "UnknownParameter"
        );
    }
}
