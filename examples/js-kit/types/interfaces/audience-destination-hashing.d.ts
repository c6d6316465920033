declare module 'audience:destination/hashing@0.2.0' {
  /**
   * The lowercase hex SHA-256 of each value after `normalization`, in order.
   */
  export function sha256Hex(normalization: Normalization, values: Array<string>): Array<string>;
  /**
   * How each value is normalised before hashing.
   * # Variants
   * 
   * ## `"none"`
   * 
   * Hash the value as given.
   * ## `"trim-lowercase"`
   * 
   * Trim surrounding whitespace and lowercase (e-mail addresses, most name fields).
   * ## `"digits-only"`
   * 
   * Keep ASCII digits only (Meta's phone numbers, dates).
   * ## `"letters-lowercase"`
   * 
   * Keep letters only (any script), lowercased (Meta's names and cities).
   */
  export type Normalization = 'none' | 'trim-lowercase' | 'digits-only' | 'letters-lowercase';
}
