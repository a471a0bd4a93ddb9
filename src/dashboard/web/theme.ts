/**
 * Per-application theming from the application's metadata (set by the operator): `portal.color` (a CSS colour for
 * buttons and links), `portal.logo` (an https: image URL) and `portal.title`. Values are checked, then set through
 * CSSOM and DOM properties, never written into HTML or style text.
 */
export function applyColor(metadata: Record<string, string>): void {
  const color = metadata['portal.color'];
  if (color && CSS.supports('color', color)) document.documentElement.style.setProperty('--accent', color);
}

export function logoOf(metadata: Record<string, string>): string | null {
  const logo = metadata['portal.logo'];
  return logo && /^https:\/\/[^\s]+$/i.test(logo) ? logo : null;
}
