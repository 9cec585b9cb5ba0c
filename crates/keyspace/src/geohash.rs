//! Geohashes as Redis 7.0 computes them: the 52-bit interleaved score of a GEO member, the
//! nine boxes that cover a search area, and the distances.
//!
//! Problem: a GEO set is a sorted set whose scores are geohashes, so the scores this module
//! computes must equal redis-server's bit for bit (an RDB, an AOF or a replica carries them),
//! and a search must visit the same boxes in the same order (GEOSEARCH without ASC/DESC, or
//! with COUNT ANY, replies in visiting order). The facts come from Redis 7.0.15's `geohash.c`
//! and `geohash_helper.c`:
//!
//! - a position is encoded in 26 steps per axis: the latitude's offset in `[-85.05112878,
//!   85.05112878]` and the longitude's in `[-180, 180]`, each scaled to `[0, 2^26]` and
//!   truncated, the latitude's bits in the even positions and the longitude's in the odd ones;
//! - a score decodes to the centre of its cell (clamped to the valid ranges);
//! - distances are haversine on a sphere of radius 6372797.560856 m, with the shortcut
//!   `R * |Δlat|` when the two longitudes give `sin(Δlon/2) == 0`;
//! - a search estimates a step from the radius (wider near the poles), decreases it once when
//!   a neighbouring box does not reach the bounding box, and drops the neighbours the bounding
//!   box does not touch.
//!
//! All arithmetic is `f64` in the order Redis writes it, and `sin`/`cos`/`asin`/`sqrt` are the
//! platform's libm (as Redis's), so results are the same doubles.

/// Steps per axis of a stored score (26 * 2 = 52 bits).
pub const STEP_MAX: u8 = 26;
/// Latitude limits (EPSG:900913).
pub const LAT_MIN: f64 = -85.05112878;
/// See [`LAT_MIN`].
pub const LAT_MAX: f64 = 85.05112878;
/// Longitude limits.
pub const LONG_MIN: f64 = -180.0;
/// See [`LONG_MIN`].
pub const LONG_MAX: f64 = 180.0;

/// Earth's quadratic mean radius for WGS-84, in metres.
const EARTH_RADIUS: f64 = 6372797.560856;
/// The Mercator bound `geohashEstimateStepsByRadius` doubles a range up to.
const MERCATOR_MAX: f64 = 20037726.37;
/// Degrees to radians (`M_PI / 180.0`).
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash of `step` bits per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hash {
    /// The interleaved bits (2 * step of them).
    pub bits: u64,
    /// Bits per axis, 1..=32.
    pub step: u8,
}

/// A closed range of one coordinate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// The cell a hash covers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    /// Longitude range.
    pub longitude: Range,
    /// Latitude range.
    pub latitude: Range,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// Spread the 32 bits of `v` to the even positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

/// Gather the even bits of `v` into the low 32 bits.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// `x` in the even bits, `y` in the odd ones.
fn interleave(x: u32, y: u32) -> u64 {
    spread(x) | (spread(y) << 1)
}

/// The inverse of [`interleave`]: `(x, y)`.
fn deinterleave(v: u64) -> (u32, u32) {
    (squash(v), squash(v >> 1))
}

/// Encode a position with `step` bits per axis over the given ranges (`geohashEncode`);
/// `None` outside the valid coordinates.
pub fn encode(long_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Hash> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < long_range.min || lon > long_range.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (lon - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(Hash {
        bits: interleave(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// Encode with Redis's ranges (`geohashEncodeWGS84`).
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode(LONG_RANGE, LAT_RANGE, lon, lat, step)
}

/// The standard geohash ranges (latitude in `[-90, 90]`), used by GEOHASH's strings.
pub fn encode_standard(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode(
        LONG_RANGE,
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        step,
    )
}

/// The score of a position: its 26-step hash aligned to 52 bits (`geohashAlign52Bits`).
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(align52)
}

/// The hash's bits shifted to the top of 52 bits.
pub fn align52(h: Hash) -> u64 {
    h.bits << (52 - u32::from(h.step) * 2)
}

/// The cell of `h` (`geohashDecode`).
pub fn decode(h: Hash) -> Area {
    let (ilato, ilono) = deinterleave(h.bits);
    let div = (1u64 << h.step) as f64;
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let long_scale = LONG_RANGE.max - LONG_RANGE.min;
    Area {
        latitude: Range {
            min: LAT_RANGE.min + (f64::from(ilato) / div) * lat_scale,
            max: LAT_RANGE.min + ((f64::from(ilato) + 1.0) / div) * lat_scale,
        },
        longitude: Range {
            min: LONG_RANGE.min + (f64::from(ilono) / div) * long_scale,
            max: LONG_RANGE.min + ((f64::from(ilono) + 1.0) / div) * long_scale,
        },
    }
}

/// C's `(uint64_t)d` as x86-64 compilers emit it (`cvttsd2si`, with the 2^63 adjustment):
/// what Redis's `decodeGeohash` does to any score, geohash or not.
fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let cvtt = |v: f64| -> i64 {
        if v.is_nan() || !(-TWO63..TWO63).contains(&v) {
            i64::MIN
        } else {
            v as i64
        }
    };
    if d >= TWO63 {
        (cvtt(d - TWO63) as u64) ^ (1 << 63)
    } else {
        cvtt(d) as u64
    }
}

/// The position a score stands for: the centre of its 26-step cell (`decodeGeohash`).
pub fn decode_score(score: f64) -> (f64, f64) {
    let area = decode(Hash {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    });
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The longitude's bits of an interleaved hash (the odd positions).
const LON_LANE: u64 = 0xaaaa_aaaa_aaaa_aaaa;
/// The latitude's bits of an interleaved hash (the even positions).
const LAT_LANE: u64 = 0x5555_5555_5555_5555;

/// Move by one cell (`d` > 0: up, < 0: down, 0: stay) along the coordinate whose bits are
/// `lane` (`LON_LANE` or `LAT_LANE`): add or subtract one on that lane, the other lane's
/// positions filled with ones so the carry or borrow crosses them, then masked to the step.
fn move_lane(h: &mut Hash, lane: u64, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(h.step) * 2;
    let mut v = h.bits & lane;
    let other = h.bits & !lane;
    let gaps = !lane >> shift;
    if d > 0 {
        v = v.wrapping_add(gaps + 1);
    } else {
        v |= gaps;
        v = v.wrapping_sub(gaps + 1);
    }
    v &= lane >> shift;
    h.bits = v | other;
}

fn moved(h: Hash, dx: i8, dy: i8) -> Hash {
    let mut n = h;
    move_lane(&mut n, LON_LANE, dx);
    move_lane(&mut n, LAT_LANE, dy);
    n
}

/// The search area of a query.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// A circle of this radius (in the unit).
    Radius(f64),
    /// A box of this width and height (in the unit).
    Box {
        /// East-west extent.
        width: f64,
        /// North-south extent.
        height: f64,
    },
}

/// A query: centre, shape, and the unit's size in metres.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    /// Centre longitude.
    pub lon: f64,
    /// Centre latitude.
    pub lat: f64,
    /// The area.
    pub shape: Shape,
    /// Metres per unit.
    pub conversion: f64,
}

/// The step precision of the nine boxes for a radius (`geohashEstimateStepsByRadius`).
fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

impl Query {
    /// `[min_lon, min_lat, max_lon, max_lat]` of the area (`geohashBoundingBox`).
    fn bounding_box(&self) -> [f64; 4] {
        let (height, width) = match self.shape {
            Shape::Radius(r) => (self.conversion * r, self.conversion * r),
            Shape::Box { width, height } => (
                self.conversion * (height / 2.0),
                self.conversion * (width / 2.0),
            ),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS);
        let long_delta_top = rad_deg(width / EARTH_RADIUS / deg_rad(self.lat + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS / deg_rad(self.lat - lat_delta).cos());
        let southern = self.lat < 0.0;
        let long_delta = if southern {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            self.lon - long_delta,
            self.lat - lat_delta,
            self.lon + long_delta,
            self.lat + lat_delta,
        ]
    }

    /// The boxes to scan, in Redis's order: the centre, then north, south, east, west,
    /// north-east, north-west, south-east, south-west; `None` for a neighbour the search does
    /// not need (`geohashCalculateAreasByShapeWGS84`).
    pub fn boxes(&self) -> [Option<Hash>; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let radius_meters = match self.shape {
            Shape::Radius(r) => r,
            Shape::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.conversion;
        let mut steps = estimate_steps(radius_meters, self.lat);
        // The centre is a valid coordinate (checked when parsed), so encoding succeeds.
        let hash_at = |steps| {
            encode_wgs84(self.lon, self.lat, steps).unwrap_or(Hash {
                bits: 0,
                step: steps,
            })
        };
        let mut hash = hash_at(steps);
        let north = decode(moved(hash, 0, 1));
        let south = decode(moved(hash, 0, -1));
        let east = decode(moved(hash, 1, 0));
        let west = decode(moved(hash, -1, 0));
        let decrease = north.latitude.max < max_lat
            || south.latitude.min > min_lat
            || east.longitude.max < max_lon
            || west.longitude.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            hash = hash_at(steps);
        }
        let area = decode(hash);
        let mut n = [
            Some(hash),
            Some(moved(hash, 0, 1)),
            Some(moved(hash, 0, -1)),
            Some(moved(hash, 1, 0)),
            Some(moved(hash, -1, 0)),
            Some(moved(hash, 1, 1)),
            Some(moved(hash, -1, 1)),
            Some(moved(hash, 1, -1)),
            Some(moved(hash, -1, -1)),
        ];
        const N: usize = 1;
        const S: usize = 2;
        const E: usize = 3;
        const W: usize = 4;
        const NE: usize = 5;
        const NW: usize = 6;
        const SE: usize = 7;
        const SW: usize = 8;
        if steps >= 2 {
            if area.latitude.min < min_lat {
                for i in [S, SW, SE] {
                    n[i] = None;
                }
            }
            if area.latitude.max > max_lat {
                for i in [N, NE, NW] {
                    n[i] = None;
                }
            }
            if area.longitude.min < min_lon {
                for i in [W, SW, NW] {
                    n[i] = None;
                }
            }
            if area.longitude.max > max_lon {
                for i in [E, SE, NE] {
                    n[i] = None;
                }
            }
        }
        n
    }

    /// The distance from the centre to `(lon, lat)` in metres when the point is inside the
    /// area (`geoWithinShape`).
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.conversion).then_some(d)
            }
            Shape::Box { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                if lat_distance(lat, self.lat) > height_m / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > width_m / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }
}

/// The score range `[min, max)` of the members inside `h`'s cell (`scoresOfGeoHashBox`).
pub fn score_range(h: Hash) -> (f64, f64) {
    let min = align52(h);
    let max = align52(Hash {
        bits: h.bits + 1,
        step: h.step,
    });
    (min as f64, max as f64)
}

/// The distance along a meridian (`geohashGetLatDistance`).
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// The haversine distance in metres (`geohashGetDistance`).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moving a cell is plus or minus one, modulo 2^step, on one coordinate of the
    /// de-interleaved pair (the model), the other unchanged.
    #[test]
    fn a_move_steps_one_coordinate_with_wraparound() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u32 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let step = (i % 32 + 1) as u8;
            let width = u64::from(step) * 2;
            let mut bits = seed >> (64 - width);
            if i % 7 == 0 {
                // The edges, where the carry or borrow runs through every bit.
                bits = if i % 2 == 0 {
                    0
                } else {
                    u64::MAX >> (64 - width)
                };
            }
            let (lat, lon) = deinterleave(bits);
            let modulo = |v: i64| (v.rem_euclid(1i64 << step)) as u32;
            for d in [-1i8, 0, 1] {
                let mut h = Hash { bits, step };
                move_lane(&mut h, LON_LANE, d);
                let want = interleave(lat, modulo(i64::from(lon) + i64::from(d)));
                assert_eq!(h.bits, want, "lon {bits:#x} step {step} d {d}");
                let mut h = Hash { bits, step };
                move_lane(&mut h, LAT_LANE, d);
                let want = interleave(modulo(i64::from(lat) + i64::from(d)), lon);
                assert_eq!(h.bits, want, "lat {bits:#x} step {step} d {d}");
            }
        }
    }

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0xdead_beef, 0x1234_5678),
            (!0, !0),
        ] {
            assert_eq!(deinterleave(interleave(x, y)), (x, y));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn scores_equal_redis_server() {
        // Observed on redis-server 7.0.15: GEOADD k lon lat m; ZSCORE k m.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3479447370796909));
        assert_eq!(score_of(-180.0, -85.05112878), Some(0));
    }

    #[test]
    fn decoding_is_the_cell_centre() {
        // GEOPOS of Palermo on redis-server 7.0.15.
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(
            crate::convert::format_double_human(lon),
            "13.36138933897018433"
        );
        assert_eq!(
            crate::convert::format_double_human(lat),
            "38.11555639549629859"
        );
    }

    #[test]
    fn c_conversion_of_out_of_range_scores() {
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(f64::NAN), 1 << 63);
        assert_eq!(c_double_to_u64(1e300), 0);
        assert_eq!(c_double_to_u64(3.0), 3);
    }

    #[test]
    fn neighbours_wrap_like_redis() {
        let h = Hash { bits: 0, step: 2 };
        // West of the first column wraps to the last (x bits are the odd ones).
        assert_eq!(moved(h, -1, 0).bits, 0b1010);
        assert_eq!(moved(h, 0, -1).bits, 0b0101);
        assert_eq!(moved(h, 1, 1).bits, 0b0011);
    }
}
