module.exports = {
  // Test-only contracts (mocks) are not part of the protocol's coverage figures.
  skipFiles: ["test/"],
};
