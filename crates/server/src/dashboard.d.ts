// What the dashboard's script finds on the page besides the DOM: Plotly.js,
// loaded by its own script tag (its types are not part of the check).
declare const Plotly: any;
interface Window {
  Plotly: any;
}
