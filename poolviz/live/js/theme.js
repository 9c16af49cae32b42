// Colours from JupyterLab's CSS variables, read from the view's element every time it draws, so
// JupyterLab Light, Dark and other themes read well and a theme switch restyles at the next frame.
// A page without the variables (plain HTML, VS Code, a docs page) gets the light fallbacks.

const THEME_VARS = {
  bg: ["--jp-layout-color0", "#ffffff"],
  text: ["--jp-ui-font-color1", "rgba(0, 0, 0, 0.87)"],
  muted: ["--jp-ui-font-color2", "rgba(0, 0, 0, 0.54)"],
  frame: ["--jp-border-color1", "#bdbdbd"],
  grid: ["--jp-border-color2", "#e0e0e0"],
  brand: ["--jp-brand-color1", "#1976d2"],
  warn: ["--jp-warn-color0", "#f57c00"],
  error: ["--jp-error-color1", "#d32f2f"],
  success: ["--jp-success-color1", "#388e3c"],
};
const FONT_VAR = ["--jp-ui-font-family", "sans-serif"];
// JupyterLab sets these on <body> when it switches theme.
const THEME_ATTRIBUTES = ["data-jp-theme-light", "data-jp-theme-name"];

function cssColour(ctx, value, fallback) {
  // The canvas parses any CSS colour and gives it back as "#rrggbb" or "rgba(r, g, b, a)"; a value it
  // cannot parse leaves the fallback in place.
  ctx.fillStyle = fallback;
  if (value) ctx.fillStyle = value;
  return ctx.fillStyle;
}

function rgbaOf(colour) {
  if (colour[0] === "#") return [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16)).concat([1]);
  const parts = colour.match(/[\d.]+/g).map(Number);
  return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
}

function withAlpha(colour, alpha) {
  const [r, g, b, a] = rgbaOf(colour);
  return `rgba(${r}, ${g}, ${b}, ${alpha * a})`;
}

function luminance([r, g, b]) {
  // WCAG relative luminance of an sRGB colour (0 black, 1 white).
  const lin = (c) => { const x = c / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function readPalette(el, ctx) {
  const style = getComputedStyle(el);
  const p = {};
  for (const [key, [name, fallback]] of Object.entries(THEME_VARS)) {
    p[key] = cssColour(ctx, style.getPropertyValue(name).trim(), fallback);
  }
  p.font = style.getPropertyValue(FONT_VAR[0]).trim() || FONT_VAR[1];
  // A transparent background variable means the page's own colour shows: treat it as the fallback.
  if (rgbaOf(p.bg)[3] === 0) p.bg = THEME_VARS.bg[1];
  p.dark = luminance(rgbaOf(p.bg)) < 0.4;
  p.band = withAlpha(p.text, 0.04);
  p.waitLane = withAlpha(p.warn, p.dark ? 0.13 : 0.1);
  p.resize = p.dark ? "#ce93d8" : "#7b1fa2";
  p.key = [p.bg, p.text, p.muted, p.frame, p.grid, p.brand, p.warn, p.error, p.success, p.font].join("|");
  return p;
}

function threadColour(p, thread, alpha = 1) {
  // Golden-angle hues; lighter on a dark background so every thread stands out from it.
  return `hsla(${(thread * 137.508) % 360}, ${p.dark ? 70 : 65}%, ${p.dark ? 62 : 42}%, ${alpha})`;
}

function watchTheme(el, onChange) {
  // JupyterLab may set the body attributes before the new theme's stylesheet has applied, so the
  // view checks the variables on the change and again a little later (onChange redraws only when
  // they differ from the last frame's). data-theme-checks counts the checks still to come.
  const timers = new Set();
  const pending = () => { el.dataset.themeChecks = String(timers.size); };
  const changed = () => {
    onChange();
    for (const ms of [150, 600, 1500]) {
      const id = setTimeout(() => { timers.delete(id); pending(); onChange(); }, ms);
      timers.add(id);
    }
    pending();
  };
  const observer = new MutationObserver(changed);
  if (document.body) observer.observe(document.body, { attributes: true, attributeFilter: THEME_ATTRIBUTES });
  return () => { observer.disconnect(); for (const id of timers) clearTimeout(id); timers.clear(); pending(); };
}
