// Stop the embedded cluster the test notebook started (never `ray stop`: other clusters).
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  const home = process.env.JD_UI_HOME;
  execFileSync(
    path.resolve(__dirname, '../../.venv/bin/jupyter-deploy'),
    ['cluster', 'stop'],
    {
      env: { ...process.env, JD_HOME: path.join(home, 'home') },
      stdio: 'inherit'
    }
  );
};
