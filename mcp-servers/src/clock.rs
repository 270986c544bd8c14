//! The `clock` server: the current time, time-zone conversion and date arithmetic.
//!
//! Built on `jiff` with its bundled IANA database, so results do not depend on the
//! host's `/usr/share/zoneinfo`. Each tool returns structured content (with an output
//! schema) whose text copy is the same JSON. Unknown zones and unparsable dates come
//! back as `isError` results that say what was wrong and what is accepted.

use std::str::FromStr;

use jiff::{Span, Timestamp, Unit, ZonedDateTime, civil, tz::TimeZone};
use rmcp::{
    ServerHandler,
    handler::server::{
        router::tool::ToolRouter,
        wrapper::{Json, Parameters},
    },
    model::{CallToolResult, ContentBlock},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `clock` MCP server.
#[derive(Debug, Clone)]
pub struct Clock {
    tool_router: ToolRouter<Self>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Arguments of `now`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NowArgs {
    /// IANA time zone name such as `Europe/Berlin` or `America/New_York`. Defaults to
    /// `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Arguments of `convert_time`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConvertTimeArgs {
    /// The time to convert: RFC 3339 with an offset (`2026-01-02T03:04:05Z`,
    /// `2026-01-02T03:04:05+01:00`), a civil time read in `from_timezone`
    /// (`2026-01-02T03:04`, `2026-01-02 03:04:05`, `2026-01-02`), a zoned time
    /// (`2026-01-02T03:04[Asia/Tokyo]`), Unix seconds (`1767323045`), or `now`.
    pub time: String,
    /// IANA zone in which a civil `time` is read. Defaults to `UTC`; ignored when
    /// `time` carries its own offset or zone.
    #[serde(default)]
    pub from_timezone: Option<String>,
    /// IANA zone to convert to, e.g. `Asia/Kolkata`.
    pub to_timezone: String,
}

/// Arguments of `date_add`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DateAddArgs {
    /// The starting time, in any format `convert_time` accepts (or `now`).
    pub start: String,
    /// How many units to add; negative to subtract.
    pub amount: i64,
    /// The unit of `amount`.
    pub unit: TimeUnit,
    /// IANA zone for reading a civil `start` and for calendar arithmetic (adding a day
    /// across a DST change keeps the wall-clock time). Defaults to the zone of `start`,
    /// else `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Arguments of `date_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DateDiffArgs {
    /// The earlier time, in any format `convert_time` accepts (or `now`).
    pub start: String,
    /// The later time; if it is before `start` the result is negative.
    pub end: String,
    /// The unit to measure the difference in.
    pub unit: TimeUnit,
    /// IANA zone for reading civil times and for calendar units. Defaults to the zone
    /// of `start`, else `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A calendar or clock unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    #[serde(alias = "year")]
    Years,
    #[serde(alias = "month")]
    Months,
    #[serde(alias = "week")]
    Weeks,
    #[serde(alias = "day")]
    Days,
    #[serde(alias = "hour")]
    Hours,
    #[serde(alias = "minute")]
    Minutes,
    #[serde(alias = "second")]
    Seconds,
}

impl TimeUnit {
    fn jiff(self) -> Unit {
        match self {
            TimeUnit::Years => Unit::Year,
            TimeUnit::Months => Unit::Month,
            TimeUnit::Weeks => Unit::Week,
            TimeUnit::Days => Unit::Day,
            TimeUnit::Hours => Unit::Hour,
            TimeUnit::Minutes => Unit::Minute,
            TimeUnit::Seconds => Unit::Second,
        }
    }

    fn span(self, amount: i64) -> Result<Span, jiff::Error> {
        let span = Span::new();
        match self {
            TimeUnit::Years => span.try_years(amount),
            TimeUnit::Months => span.try_months(amount),
            TimeUnit::Weeks => span.try_weeks(amount),
            TimeUnit::Days => span.try_days(amount),
            TimeUnit::Hours => span.try_hours(amount),
            TimeUnit::Minutes => span.try_minutes(amount),
            TimeUnit::Seconds => span.try_seconds(amount),
        }
    }
}

/// One instant as seen in one time zone.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TimeInfo {
    /// RFC 3339 time with the zone's offset, e.g. `2026-01-02T04:04:05+01:00`.
    pub time: String,
    /// IANA zone name (or the offset for a fixed-offset zone).
    pub timezone: String,
    /// UTC offset in effect, e.g. `+01:00`.
    pub offset: String,
    /// Zone abbreviation in effect, e.g. `CET`.
    pub abbreviation: String,
    /// Whether daylight saving time is in effect.
    pub dst: bool,
    /// Day of the week in English, e.g. `Friday`.
    pub weekday: String,
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix_seconds: i64,
}

/// Result of `convert_time`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConvertOutput {
    /// The input instant in its source zone.
    pub source: TimeInfo,
    /// The same instant in the target zone.
    pub target: TimeInfo,
}

/// Result of `date_add`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DateAddOutput {
    /// The starting instant.
    pub start: TimeInfo,
    /// The starting instant plus the amount.
    pub result: TimeInfo,
}

/// Result of `date_diff`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DateDiffOutput {
    /// The starting instant.
    pub start: TimeInfo,
    /// The ending instant.
    pub end: TimeInfo,
    /// The unit measured in.
    pub unit: TimeUnit,
    /// Whole units from `start` to `end`, truncated toward zero.
    pub whole: i64,
    /// The exact difference in `unit`, with a fraction.
    pub total: f64,
    /// The difference as an ISO 8601 duration whose largest unit is `unit`, e.g.
    /// `P1Y2M3DT4H`.
    pub duration: String,
}

#[tool_router]
impl Clock {
    /// Create the server.
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Get the current date and time in a time zone (IANA name, default UTC): \
                       RFC 3339 time, offset, zone abbreviation, DST flag, weekday and Unix \
                       seconds.",
        annotations(
            title = "Current time",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn now(&self, Parameters(args): Parameters<NowArgs>) -> Result<Json<TimeInfo>, CallToolResult> {
        let zone = zone(args.timezone.as_deref())?;
        let now = Timestamp::now()
            .to_zoned_datetime(zone)
            .round(Unit::Second)
            .map_err(|err| tool_error(format!("cannot round the current time: {err}")))?;
        Ok(Json(time_info(&now)?))
    }

    #[tool(
        description = "Convert a time from one time zone to another. The input may be RFC 3339 \
                       with an offset, a civil time like `2026-01-02T03:04` read in \
                       `from_timezone` (default UTC), Unix seconds, or `now`. Returns the \
                       instant in both zones.",
        annotations(
            title = "Convert time zone",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn convert_time(
        &self,
        Parameters(args): Parameters<ConvertTimeArgs>,
    ) -> Result<Json<ConvertOutput>, CallToolResult> {
        let source_zone = zone(args.from_timezone.as_deref())?;
        let target_zone = zone(Some(&args.to_timezone))?;
        let source = parse_time(&args.time, &source_zone, args.from_timezone.is_some())?;
        let target = source.with_time_zone(target_zone);
        Ok(Json(ConvertOutput {
            source: time_info(&source)?,
            target: time_info(&target)?,
        }))
    }

    #[tool(
        description = "Add (or, with a negative amount, subtract) years, months, weeks, days, \
                       hours, minutes or seconds to a time. Calendar units follow the calendar \
                       of the time zone: adding 1 month to Jan 31 gives the last day of \
                       February, adding 1 day across a DST change keeps the wall-clock time.",
        annotations(
            title = "Add to a date",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn date_add(
        &self,
        Parameters(args): Parameters<DateAddArgs>,
    ) -> Result<Json<DateAddOutput>, CallToolResult> {
        let zone = zone(args.timezone.as_deref())?;
        let start = parse_time(&args.start, &zone, args.timezone.is_some())?;
        let span = args
            .unit
            .span(args.amount)
            .map_err(|err| tool_error(format!("amount {} is out of range: {err}", args.amount)))?;
        let result = start
            .checked_add(span)
            .map_err(|err| tool_error(format!("the result is out of range: {err}")))?;
        Ok(Json(DateAddOutput {
            start: time_info(&start)?,
            result: time_info(&result)?,
        }))
    }

    #[tool(
        description = "Measure the time from `start` to `end` in one unit (years, months, weeks, \
                       days, hours, minutes or seconds). Returns whole units, the exact \
                       fractional total, and an ISO 8601 duration; negative when `end` is \
                       before `start`.",
        annotations(
            title = "Difference between dates",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn date_diff(
        &self,
        Parameters(args): Parameters<DateDiffArgs>,
    ) -> Result<Json<DateDiffOutput>, CallToolResult> {
        let zone = zone(args.timezone.as_deref())?;
        let start = parse_time(&args.start, &zone, args.timezone.is_some())?;
        let end = parse_time(&args.end, &zone, args.timezone.is_some())?
            .with_time_zone(start.time_zone().clone());
        let unit = args.unit.jiff();
        let span = start
            .until((unit, &end))
            .map_err(|err| tool_error(format!("cannot compute the difference: {err}")))?;
        let total = span
            .total((unit, &start))
            .map_err(|err| tool_error(format!("cannot compute the difference: {err}")))?;
        Ok(Json(DateDiffOutput {
            start: time_info(&start)?,
            end: time_info(&end)?,
            unit: args.unit,
            // `total` is bounded by jiff's span limits, far inside i64.
            whole: total.trunc() as i64,
            total,
            duration: span.to_string(),
        }))
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "clock",
    instructions = "Current time, time-zone conversion and date arithmetic. Time zones are \
                    IANA names such as Europe/Berlin; times are RFC 3339."
)]
impl ServerHandler for Clock {}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// Resolve an IANA zone name; `None` means UTC.
fn zone(name: Option<&str>) -> Result<TimeZone, CallToolResult> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(TimeZone::UTC);
    };
    TimeZone::get(name).map_err(|_| {
        tool_error(format!(
            "unknown time zone `{name}`: use an IANA name such as `UTC`, `Europe/Berlin` or \
             `America/New_York`"
        ))
    })
}

/// Parse a time given as RFC 3339 (with offset), RFC 9557 (with `[zone]`), a civil
/// date/time, Unix seconds, or `now`.
///
/// A civil time is read in `zone`. An instant with its own offset or zone is shown in
/// `zone` when `zone_given`, else in its own zone (or UTC for a bare offset, since an
/// offset does not say which zone's rules apply).
fn parse_time(
    text: &str,
    zone: &TimeZone,
    zone_given: bool,
) -> Result<ZonedDateTime, CallToolResult> {
    let text = text.trim();
    let in_zone = |ts: Timestamp| ts.to_zoned_datetime(zone.clone());
    if text.eq_ignore_ascii_case("now") {
        return Ok(in_zone(Timestamp::now()));
    }
    if let Ok(seconds) = text.trim_start_matches('@').parse::<i64>() {
        return Timestamp::from_second(seconds)
            .map(in_zone)
            .map_err(|err| tool_error(format!("Unix time {seconds} is out of range: {err}")));
    }
    if text.contains('[') {
        return ZonedDateTime::from_str(text)
            .map(|z| {
                if zone_given {
                    z.with_time_zone(zone.clone())
                } else {
                    z
                }
            })
            .map_err(|err| tool_error(format!("cannot read `{text}` as a zoned time: {err}")));
    }
    if let Ok(ts) = Timestamp::from_str(text) {
        return Ok(in_zone(ts));
    }
    match civil::DateTime::from_str(text) {
        Ok(dt) => zone
            .to_zoned_datetime(dt)
            .map_err(|err| tool_error(format!("`{text}` does not exist in that time zone: {err}"))),
        Err(err) => Err(tool_error(format!(
            "cannot read `{text}` as a time ({err}); use RFC 3339 such as \
             `2026-01-02T03:04:05Z` or `2026-01-02T03:04:05+01:00`, a civil time such as \
             `2026-01-02T03:04` or `2026-01-02`, Unix seconds, or `now`"
        ))),
    }
}

fn time_info(zdt: &ZonedDateTime) -> Result<TimeInfo, CallToolResult> {
    let format = |pattern: &str| {
        jiff::fmt::strtime::format(pattern, zdt)
            .map_err(|err| tool_error(format!("cannot format the time: {err}")))
    };
    let info = zdt.time_zone().to_offset_info(zdt.timestamp());
    Ok(TimeInfo {
        time: format("%Y-%m-%dT%H:%M:%S%.f%:z")?,
        timezone: zdt
            .time_zone()
            .iana_name()
            .map_or_else(|| zdt.offset().to_string(), str::to_owned),
        offset: format("%:z")?,
        abbreviation: info.abbreviation().to_owned(),
        dst: info.dst().is_dst(),
        weekday: format("%A")?,
        unix_seconds: zdt.timestamp().as_second(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(result: &CallToolResult) -> String {
        result
            .content
            .iter()
            .filter_map(|c| c.as_text())
            .map(|t| t.text.clone())
            .collect()
    }

    #[track_caller]
    fn convert(time: &str, from: Option<&str>, to: &str) -> ConvertOutput {
        match Clock::new().convert_time(Parameters(ConvertTimeArgs {
            time: time.into(),
            from_timezone: from.map(Into::into),
            to_timezone: to.into(),
        })) {
            Ok(Json(out)) => out,
            Err(err) => panic!("convert failed: {}", text(&err)),
        }
    }

    #[track_caller]
    fn add(start: &str, amount: i64, unit: TimeUnit, tz: Option<&str>) -> String {
        match Clock::new().date_add(Parameters(DateAddArgs {
            start: start.into(),
            amount,
            unit,
            timezone: tz.map(Into::into),
        })) {
            Ok(Json(out)) => out.result.time,
            Err(err) => panic!("date_add failed: {}", text(&err)),
        }
    }

    #[track_caller]
    fn diff(start: &str, end: &str, unit: TimeUnit) -> DateDiffOutput {
        match Clock::new().date_diff(Parameters(DateDiffArgs {
            start: start.into(),
            end: end.into(),
            unit,
            timezone: None,
        })) {
            Ok(Json(out)) => out,
            Err(err) => panic!("date_diff failed: {}", text(&err)),
        }
    }

    #[test]
    fn now_in_a_zone() {
        let Ok(Json(info)) = Clock::new().now(Parameters(NowArgs {
            timezone: Some("Asia/Tokyo".into()),
        })) else {
            panic!("now failed");
        };
        assert_eq!(info.timezone, "Asia/Tokyo");
        assert_eq!(info.offset, "+09:00");
        assert!(info.time.ends_with("+09:00"), "{}", info.time);
        let Ok(Json(utc)) = Clock::new().now(Parameters(NowArgs { timezone: None })) else {
            panic!("now failed");
        };
        assert_eq!(utc.timezone, "UTC");
        assert!((utc.unix_seconds - Timestamp::now().as_second()).abs() < 5);
    }

    #[test]
    fn unknown_zone_is_a_tool_error() {
        let Err(err) = Clock::new().now(Parameters(NowArgs {
            timezone: Some("Mars/Olympus_Mons".into()),
        })) else {
            panic!("expected an error");
        };
        assert_eq!(err.is_error, Some(true));
        assert!(text(&err).contains("unknown time zone `Mars/Olympus_Mons`"));
    }

    #[test]
    fn converts_civil_and_rfc3339() {
        let out = convert(
            "2026-01-02T03:04",
            Some("Europe/Berlin"),
            "America/New_York",
        );
        assert_eq!(out.source.time, "2026-01-02T03:04:00+01:00");
        assert_eq!(out.source.abbreviation, "CET");
        assert_eq!(out.target.time, "2026-01-01T21:04:00-05:00");
        assert_eq!(out.target.weekday, "Thursday");
        let out = convert("2026-07-01T12:00:00Z", None, "Europe/London");
        assert_eq!(out.target.time, "2026-07-01T13:00:00+01:00");
        assert!(out.target.dst);
        let out = convert("2026-01-02T03:04:05.5+02:00", None, "UTC");
        assert_eq!(out.target.time, "2026-01-02T01:04:05.5+00:00");
        let out = convert("0", None, "UTC");
        assert_eq!(out.target.time, "1970-01-01T00:00:00+00:00");
        let out = convert("2026-03-01T10:00[Asia/Kolkata]", None, "UTC");
        assert_eq!(out.source.offset, "+05:30");
        assert_eq!(out.target.time, "2026-03-01T04:30:00+00:00");
        let out = convert("2026-01-02", Some("UTC"), "UTC");
        assert_eq!(out.target.time, "2026-01-02T00:00:00+00:00");
    }

    #[test]
    fn bad_dates_are_tool_errors() {
        for bad in ["yesterday-ish", "2026-13-01", "2026-02-30T00:00", ""] {
            let result = Clock::new().convert_time(Parameters(ConvertTimeArgs {
                time: bad.into(),
                from_timezone: None,
                to_timezone: "UTC".into(),
            }));
            let Err(err) = result else {
                panic!("{bad:?} should fail");
            };
            assert_eq!(err.is_error, Some(true));
            assert!(text(&err).contains("cannot read"), "{}", text(&err));
        }
    }

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(
            add("2026-01-31T10:00:00Z", 1, TimeUnit::Months, None),
            "2026-02-28T10:00:00+00:00"
        );
        assert_eq!(
            add("2024-02-29T00:00", 1, TimeUnit::Years, None),
            "2025-02-28T00:00:00+00:00"
        );
        // Across the 2026-03-29 DST change in Berlin, a day keeps the wall clock and
        // 24 hours does not.
        assert_eq!(
            add("2026-03-28T12:00", 1, TimeUnit::Days, Some("Europe/Berlin")),
            "2026-03-29T12:00:00+02:00"
        );
        assert_eq!(
            add(
                "2026-03-28T12:00",
                24,
                TimeUnit::Hours,
                Some("Europe/Berlin")
            ),
            "2026-03-29T13:00:00+02:00"
        );
        assert_eq!(
            add("2026-01-10T00:00:00Z", -2, TimeUnit::Weeks, None),
            "2025-12-27T00:00:00+00:00"
        );
        let err = Clock::new()
            .date_add(Parameters(DateAddArgs {
                start: "2026-01-01".into(),
                amount: i64::MAX,
                unit: TimeUnit::Years,
                timezone: None,
            }))
            .err()
            .map(|e| text(&e));
        assert!(err.is_some_and(|e| e.contains("out of range")));
    }

    #[test]
    fn differences() {
        let out = diff("2026-01-01", "2026-03-01T12:00", TimeUnit::Days);
        assert_eq!(out.whole, 59);
        assert!((out.total - 59.5).abs() < 1e-9);
        assert_eq!(out.duration, "P59DT12H");
        let out = diff("2026-03-01", "2026-01-01", TimeUnit::Months);
        assert_eq!(out.whole, -2);
        let out = diff(
            "2000-01-01T00:00:00Z",
            "2026-06-01T00:00:00Z",
            TimeUnit::Years,
        );
        assert_eq!(out.whole, 26);
        let out = diff(
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:01:30Z",
            TimeUnit::Seconds,
        );
        assert_eq!(out.whole, 90);
    }

    #[test]
    fn unit_aliases_deserialize() {
        let unit: TimeUnit = serde_json::from_str("\"day\"").expect("alias parses");
        assert_eq!(unit, TimeUnit::Days);
        let tools = Clock::new().tool_router.list_all();
        assert_eq!(tools.len(), 4);
        assert!(
            tools
                .iter()
                .all(|t| t.output_schema.is_some() && t.annotations.is_some())
        );
    }
}
