import { render } from "preact";
import { App } from "./App";
import "./style.css";
import { start } from "./telegram";

start();
render(<App />, document.getElementById("app") as HTMLElement);
