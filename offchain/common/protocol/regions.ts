/**
 * Regions (issue 20, D68): where a gateway, host or stargate says it runs. A region is an ISO 3166-1 alpha-2
 * country code (what enforced placement and sovereignty rules name: "DE", "US") plus a network region name chosen
 * by the network ("eu-central", "us-east"), written `DE/eu-central` on command lines. A node declares its own
 * region and signs it (docs/scheduling.md); these are the shapes every signer, verifier and policy shares.
 *
 * The country list is ICU's (Node's full-icu, no download): the two-letter regions CLDR names, less the codes ISO
 * 3166-1 does not assign to a country (reserved, withdrawn, CLDR's groupings and pseudo-regions), 249 codes.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";

/** CLDR two-letter region codes that are not ISO 3166-1 assigned country codes. */
const NOT_COUNTRIES = new Set(
  "AC AN BU CP CQ CS DD DG DY EA EU EZ FX HV IC NH QO RH SU TA TP UK UN VD XA XB XK YD YU ZR ZZ".split(" "),
);

let countries: ReadonlySet<string> | undefined;

/** The ISO 3166-1 alpha-2 country codes (249). */
export function countryCodes(): ReadonlySet<string> {
  if (countries) return countries;
  const names = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
  const found = new Set<string>();
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (const a of letters)
    for (const b of letters) {
      const code = a + b;
      if (!NOT_COUNTRIES.has(code) && names.of(code) !== undefined) found.add(code);
    }
  countries = found;
  return found;
}

/** Whether `code` is an assigned ISO 3166-1 alpha-2 country code (upper case). */
export function isCountry(code: string): boolean {
  return countryCodes().has(code);
}

export const COUNTRY_PATTERN = /^[A-Z]{2}$/;
/** A network region's name: lower-case letters, digits and dashes, starting with a letter or digit, <= 32. */
export const REGION_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

export const CountrySchema = Type.String({ pattern: COUNTRY_PATTERN.source });
export const RegionNameSchema = Type.String({ pattern: REGION_NAME_PATTERN.source });
export const RegionSchema = Type.Object(
  { country: CountrySchema, region: RegionNameSchema },
  { additionalProperties: false },
);
export type Region = Static<typeof RegionSchema>;

/** `DE/eu-central`: the region's key in maps and its form on command lines and in metrics. */
export function regionKey(region: Region): string {
  return `${region.country}/${region.region}`;
}

/** Parses `DE/eu-central`; throws with the reason when it is not a country code and a region name. */
export function parseRegion(text: string): Region {
  const [country, region, extra] = text.split("/");
  if (extra !== undefined || region === undefined)
    throw new Error(`"${text}" is not COUNTRY/region (for example DE/eu-central)`);
  if (!COUNTRY_PATTERN.test(country) || !isCountry(country))
    throw new Error(`"${country}" is not an ISO 3166-1 alpha-2 country code (upper case, for example DE)`);
  if (!REGION_NAME_PATTERN.test(region))
    throw new Error(`"${region}" is not a region name (a-z, 0-9 and dashes, up to 32, for example eu-central)`);
  return { country, region };
}

/** A region checked beyond its schema: the country must be an assigned code. The reason, or undefined. */
export function regionProblem(region: Region): string | undefined {
  return isCountry(region.country) ? undefined : `"${region.country}" is not an ISO 3166-1 alpha-2 country code`;
}

/** How a region travels in signed messages (ConfigHello, HostRegistration): two strings, both "" when undeclared. */
export interface RegionFields {
  country: string;
  region: string;
}

export function regionFields(region: Region | undefined): RegionFields {
  return region ? { country: region.country, region: region.region } : { country: "", region: "" };
}

/**
 * The region two signed strings declare (none when both are ""), or the reason they are not one: checked before
 * any signature work, so a malformed region costs no key recovery.
 */
export function readRegionFields(fields: RegionFields): { region?: Region } | { problem: string } {
  const { country, region } = fields;
  if (country === "" && region === "") return {};
  if (!COUNTRY_PATTERN.test(country) || !isCountry(country))
    return { problem: `"${country.slice(0, 8)}" is not an ISO 3166-1 alpha-2 country code (upper case, e.g. DE)` };
  if (!REGION_NAME_PATTERN.test(region))
    return { problem: `"${region.slice(0, 40)}" is not a region name (a-z, 0-9 and dashes, up to 32)` };
  return { region: { country, region } };
}
