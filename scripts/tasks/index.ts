// Hardhat tasks, named area:verb. Imported by hardhat.config.ts.
import "./deploy";
import "./stake";
import "./rewards";
import "./payments";
import "./keys";
import "./gov";
import "./config";
