/** Stylesheets are bundled as (minified) text: `import css from "./widget.css"`. */
declare module "*.css" {
  const text: string;
  export default text;
}
