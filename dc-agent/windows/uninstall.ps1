<#
.SYNOPSIS
  Removes pwsync's dc-agent service and unregisters the LSA password filter.
.DESCRIPTION
  Removes only "pwsync-filter" from Notification Packages (every other package stays), stops and
  deletes the service. The DLL stays loaded in LSASS until the next reboot, so it is deleted
  only if Windows lets go of it; otherwise the script schedules nothing and tells you to delete
  %SystemRoot%\System32\pwsync-filter.dll after rebooting.
  The data folder (queue of sealed changes not yet delivered) is kept unless -RemoveData is
  given: check "dc-agent verify" / the heartbeat's queue depth before removing it.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
  [string]$InstallDir = "$env:ProgramFiles\pwsync",
  [string]$DataDir = "$env:ProgramData\pwsync\dc-agent",
  [switch]$RemoveData
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$ServiceName = 'pwsync-dc-agent'
$PackageName = 'pwsync-filter'
$LsaKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Lsa'

$packages = @((Get-ItemProperty -Path $LsaKey -Name 'Notification Packages').'Notification Packages')
if ($packages -contains $PackageName) {
  Set-ItemProperty -Path $LsaKey -Name 'Notification Packages' -Type MultiString -Value @($packages | Where-Object { $_ -ne $PackageName })
  Write-Host "Removed $PackageName from Notification Packages"
}

if (Get-Service $ServiceName -ErrorAction SilentlyContinue) {
  Stop-Service $ServiceName -ErrorAction SilentlyContinue
  $wrapper = Join-Path $InstallDir "$ServiceName.exe"
  if (Test-Path $wrapper) { & $wrapper uninstall | Out-Null } else { sc.exe delete $ServiceName | Out-Null }
}
if (Get-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue) {
  Stop-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue
  Unregister-ScheduledTask -TaskName $ServiceName -Confirm:$false
  [Environment]::SetEnvironmentVariable('PWSYNC_CONFIG', $null, 'Machine')
  [Environment]::SetEnvironmentVariable('PWSYNC_AGENT__DATA_DIR', $null, 'Machine')
}

$dll = Join-Path $env:SystemRoot "System32\$PackageName.dll"
if (Test-Path $dll) {
  try { Remove-Item $dll -Force } catch { Write-Warning "$dll is still loaded by LSASS; delete it after the next reboot." }
}
if (Test-Path $InstallDir) { Remove-Item $InstallDir -Recurse -Force }
if ($RemoveData -and (Test-Path $DataDir)) { Remove-Item $DataDir -Recurse -Force }
Write-Warning 'Reboot this domain controller to unload the password filter from LSASS.'
